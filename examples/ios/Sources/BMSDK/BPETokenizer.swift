import Foundation

/// BPE tokenization from a Hugging Face `tokenizer.json`, for decoder-only language models: byte-level BPE
/// (GPT-2, Llama-3, Qwen: the ByteLevel pre-tokenizer, optionally after a Split regex) and SentencePiece-style BPE
/// (Llama-2, Gemma: `▁` for spaces, `<0xNN>` byte fallback). Encoding: added tokens are matched in the raw text
/// first (longest first), each other segment is normalized, pre-tokenized and merged by the ranks of
/// `model.merges`; the post-processor's `single` template adds bos/eos. Decoding goes through `TokenDecoder`.
///
/// Tokens are compared as Unicode scalars (Swift's String equality is canonical equivalence). Regexes run on
/// NSRegularExpression (ICU), not Oniguruma as in Hugging Face: they agree on the GPT-2 and Llama-3 patterns for
/// ordinary text; rare whitespace and category edge cases may split differently.
public final class BPETokenizer {
    static let gpt2Split = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

    struct Added {
        let content: [Unicode.Scalar]
        let id: Int
        let special: Bool
        let lstrip: Bool
        let rstrip: Bool
    }

    /// One pre-tokenizer step: a piece of text (and whether it starts the input) into pieces.
    typealias PreStep = (String, Bool) -> [String]
    typealias Key = [Unicode.Scalar]

    private var vocab: [Key: Int] = [:]
    private(set) var tokens: [String] = []
    private var special: [Bool] = []
    private var merges: [Int64: (rank: Int, id: Int)] = [:]
    private var added: [Added] = []
    private var normalizers: [(String) -> String] = []
    private var preTokenizer: [PreStep] = []
    private var prefix: [Int] = []
    private var suffix: [Int] = []
    private var unkId: Int?
    private var byteFallback = false
    private var fuseUnk = false
    private var ignoreMerges = false
    private var cache: [Key: [Int]] = [:]
    public private(set) var decoder: TokenDecoder

    public convenience init(tokenizerJSON url: URL) throws {
        guard let data = try? Data(contentsOf: url) else { throw BMSDKError.tokenizer("\(url.path) is missing") }
        try self.init(data: data)
    }

    public init(data: Data) throws {
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let model = root["model"] as? [String: Any], let rawVocab = model["vocab"] as? [String: Int] else {
            throw BMSDKError.tokenizer("not a tokenizer.json with a model vocab")
        }
        guard (model["type"] as? String) == "BPE" else {
            throw BMSDKError.tokenizer("not a BPE tokenizer: model type \(model["type"] ?? "?")")
        }
        if !(model["continuing_subword_prefix"] is NSNull || model["continuing_subword_prefix"] == nil)
            || !(model["end_of_word_suffix"] is NSNull || model["end_of_word_suffix"] == nil) {
            throw BMSDKError.tokenizer("BPE with a subword prefix or end-of-word suffix is not supported")
        }
        decoder = try TokenDecoder(root["decoder"])
        var size = 0
        for (token, id) in rawVocab {
            vocab[Array(token.unicodeScalars)] = id
            size = max(size, id + 1)
        }
        for t in root["added_tokens"] as? [[String: Any]] ?? [] {
            let a = Added(content: Array((t["content"] as? String ?? "").unicodeScalars), id: t["id"] as? Int ?? 0,
                          special: t["special"] as? Bool ?? false, lstrip: t["lstrip"] as? Bool ?? false,
                          rstrip: t["rstrip"] as? Bool ?? false)
            added.append(a)
            size = max(size, a.id + 1)
        }
        added.sort { $0.content.count > $1.content.count }
        tokens = Array(repeating: "", count: size)
        special = Array(repeating: false, count: size)
        for (token, id) in rawVocab { tokens[id] = token }
        for a in added {
            tokens[a.id] = String(String.UnicodeScalarView(a.content))
            special[a.id] = a.special
        }
        try readMerges(model["merges"] as? [Any] ?? [])
        unkId = (model["unk_token"] as? String).flatMap { vocab[Array($0.unicodeScalars)] }
        byteFallback = model["byte_fallback"] as? Bool ?? false
        fuseUnk = model["fuse_unk"] as? Bool ?? false
        ignoreMerges = model["ignore_merges"] as? Bool ?? false
        if let n = root["normalizer"] as? [String: Any] { try addNormalizer(n) }
        if let p = root["pre_tokenizer"] as? [String: Any] { try addPreTokenizer(p) }
        if let p = root["post_processor"] as? [String: Any] { try readPostProcessor(p) }
    }

    public var vocabSize: Int { tokens.count }

    /// The token string of an id (an added token's content).
    public func token(_ id: Int) -> String { tokens[id] }

    public func isSpecial(_ id: Int) -> Bool { special[id] }

    /// The ids of `text` with the post-processor's special tokens (bos), as Hugging Face's encode.
    public func encode(_ text: String) -> [Int] {
        let scalars = Array(text.unicodeScalars)
        var ids = prefix
        var first = true
        var start = 0
        while true {
            let match = nextAdded(scalars, from: start)
            let end = match?.begin ?? scalars.count
            if end > start { encodeSegment(String(String.UnicodeScalarView(scalars[start..<end])), first: first, into: &ids) }
            guard let match else { break }
            ids.append(added[match.index].id)
            first = false
            start = match.end
        }
        return ids + suffix
    }

    /// Text of `ids`, special tokens left out (skip_special_tokens=True).
    public func decode(_ ids: [Int]) -> String {
        decoder.decode(ids.filter { !special[$0] }.map { tokens[$0] })
    }

    private func readMerges(_ list: [Any]) throws {
        for (rank, m) in list.enumerated() {
            let left: String, right: String
            if let s = m as? String {
                let scalars = Array(s.unicodeScalars)
                guard let space = scalars.dropFirst().firstIndex(of: " ") else { throw BMSDKError.tokenizer("bad merge \(s)") }
                left = String(String.UnicodeScalarView(scalars[..<space]))
                right = String(String.UnicodeScalarView(scalars[(space + 1)...]))
            } else if let pair = m as? [String], pair.count == 2 {
                left = pair[0]
                right = pair[1]
            } else {
                throw BMSDKError.tokenizer("bad merge \(m)")
            }
            let l = Array(left.unicodeScalars), r = Array(right.unicodeScalars)
            if let a = vocab[l], let b = vocab[r], let merged = vocab[l + r], merges[Self.pair(a, b)] == nil {
                merges[Self.pair(a, b)] = (rank, merged)
            }
        }
    }

    private static func pair(_ a: Int, _ b: Int) -> Int64 { Int64(a) << 32 | Int64(b) }

    private func nextAdded(_ s: [Unicode.Scalar], from: Int) -> (begin: Int, end: Int, index: Int)? {
        var i = from
        while i < s.count {
            for (k, a) in added.enumerated() where !a.content.isEmpty && i + a.content.count <= s.count {
                guard Array(s[i..<i + a.content.count]) == a.content else { continue }
                var begin = i, end = i + a.content.count
                while a.lstrip && begin > from && s[begin - 1].properties.isWhitespace { begin -= 1 }
                while a.rstrip && end < s.count && s[end].properties.isWhitespace { end += 1 }
                return (begin, end, k)
            }
            i += 1
        }
        return nil
    }

    private func encodeSegment(_ segment: String, first: Bool, into ids: inout [Int]) {
        let normalized = normalizers.reduce(segment) { $1($0) }
        var pieces = [normalized]
        for step in preTokenizer {
            pieces = pieces.enumerated().flatMap { step($0.element, first && $0.offset == 0) }
        }
        for piece in pieces where !piece.unicodeScalars.isEmpty {
            let key = Array(piece.unicodeScalars)
            if let hit = cache[key] { ids += hit; continue }
            let word = bpe(key)
            cache[key] = word
            ids += word
        }
    }

    /// BPE of one pre-token: its characters (byte fallback or unk where the vocab lacks one), then merges by rank.
    private func bpe(_ word: [Unicode.Scalar]) -> [Int] {
        if ignoreMerges, let id = vocab[word] { return [id] }
        var symbols: [Int] = []
        for s in word {
            if let id = vocab[[s]] {
                symbols.append(id)
                continue
            }
            let bytes = byteFallback ? Array(String(s).utf8).map { vocab[Array(String(format: "<0x%02X>", $0).unicodeScalars)] } : []
            if !bytes.isEmpty && bytes.allSatisfy({ $0 != nil }) {
                symbols += bytes.map { $0! }
            } else if let unk = unkId {
                if !(fuseUnk && symbols.last == unk) { symbols.append(unk) }
            }
            // without unk_token, a character outside the vocab is dropped (as Hugging Face does)
        }
        while symbols.count > 1 {
            var best = -1
            var bestMerge: (rank: Int, id: Int)?
            for i in 0..<(symbols.count - 1) {
                if let m = merges[Self.pair(symbols[i], symbols[i + 1])], bestMerge == nil || m.rank < bestMerge!.rank {
                    best = i
                    bestMerge = m
                }
            }
            guard let merge = bestMerge else { break }
            symbols[best] = merge.id
            symbols.remove(at: best + 1)
        }
        return symbols
    }

    private func addNormalizer(_ n: [String: Any]) throws {
        let type = n["type"] as? String ?? "?"
        switch type {
        case "Sequence": for inner in n["normalizers"] as? [[String: Any]] ?? [] { try addNormalizer(inner) }
        case "NFC": normalizers.append { $0.precomposedStringWithCanonicalMapping }
        case "NFD": normalizers.append { $0.decomposedStringWithCanonicalMapping }
        case "NFKC": normalizers.append { $0.precomposedStringWithCompatibilityMapping }
        case "NFKD": normalizers.append { $0.decomposedStringWithCompatibilityMapping }
        case "Lowercase": normalizers.append { String(String.UnicodeScalarView($0.unicodeScalars.flatMap { $0.properties.lowercaseMapping.unicodeScalars })) }
        case "Prepend":
            let p = n["prepend"] as? String ?? ""
            normalizers.append { $0.unicodeScalars.isEmpty ? $0 : p + $0 }
        case "Replace":
            let pattern = n["pattern"] as? [String: Any] ?? [:]
            let content = n["content"] as? String ?? ""
            if let from = pattern["String"] as? String {
                normalizers.append { TokenDecoder.replace($0, from, content) }
            } else if let re = pattern["Regex"] as? String {
                let regex = try Self.regex(re)
                normalizers.append { Self.replaceAll($0, regex, with: content) }
            }
        default: throw BMSDKError.tokenizer("unsupported tokenizer normalizer \(type)")
        }
    }

    private func addPreTokenizer(_ p: [String: Any]) throws {
        let type = p["type"] as? String ?? "?"
        switch type {
        case "Sequence":
            for inner in p["pretokenizers"] as? [[String: Any]] ?? [] { try addPreTokenizer(inner) }
        case "ByteLevel":
            let prefixSpace = p["add_prefix_space"] as? Bool ?? false
            let regex = (p["use_regex"] as? Bool ?? true) ? try Self.regex(Self.gpt2Split) : nil
            preTokenizer.append { piece, _ in
                let s = prefixSpace && !piece.hasPrefix(" ") ? " " + piece : piece
                let parts = regex.map { Self.split(s, $0, isolated: true) } ?? [s]
                return parts.map { String(String.UnicodeScalarView(ByteLevel.encode($0))) }
            }
        case "Split":
            let pattern = p["pattern"] as? [String: Any] ?? [:]
            let regex: NSRegularExpression
            if let re = pattern["Regex"] as? String {
                regex = try Self.regex(re)
            } else {
                regex = try NSRegularExpression(pattern: NSRegularExpression.escapedPattern(for: pattern["String"] as? String ?? ""))
            }
            let behavior = p["behavior"] as? String ?? "Isolated"
            guard !(p["invert"] as? Bool ?? false), behavior == "Isolated" || behavior == "Removed" else {
                throw BMSDKError.tokenizer("pre-tokenizer Split: only Isolated or Removed, not inverted")
            }
            preTokenizer.append { piece, _ in Self.split(piece, regex, isolated: behavior == "Isolated") }
        case "Metaspace":
            let replacement = p["replacement"] as? String ?? "▁"
            let scheme = p["prepend_scheme"] as? String ?? ((p["add_prefix_space"] as? Bool ?? true) ? "always" : "never")
            let splits = p["split"] as? Bool ?? true
            preTokenizer.append { piece, first in
                var s = TokenDecoder.replace(piece, " ", replacement)
                if (scheme == "always" || (scheme == "first" && first)) && !s.unicodeScalars.starts(with: replacement.unicodeScalars) {
                    s = replacement + s
                }
                return splits ? Self.splitBefore(s, Array(replacement.unicodeScalars)) : [s]
            }
        default: throw BMSDKError.tokenizer("unsupported tokenizer pre-tokenizer \(type)")
        }
    }

    private func readPostProcessor(_ p: [String: Any]) throws {
        let type = p["type"] as? String ?? "?"
        switch type {
        case "Sequence": for inner in p["processors"] as? [[String: Any]] ?? [] { try readPostProcessor(inner) }
        case "ByteLevel": break  // adjusts offsets only
        case "TemplateProcessing":
            let specials = p["special_tokens"] as? [String: [String: Any]] ?? [:]
            var afterSequence = false
            for piece in p["single"] as? [[String: Any]] ?? [] {
                if piece["Sequence"] != nil { afterSequence = true; continue }
                guard let name = (piece["SpecialToken"] as? [String: Any])?["id"] as? String,
                      let ids = specials[name]?["ids"] as? [Int] else { throw BMSDKError.tokenizer("bad template \(piece)") }
                if afterSequence { suffix += ids } else { prefix += ids }
            }
        default: throw BMSDKError.tokenizer("unsupported tokenizer post-processor \(type)")
        }
    }

    private static func regex(_ pattern: String) throws -> NSRegularExpression {
        do { return try NSRegularExpression(pattern: pattern) } catch {
            throw BMSDKError.tokenizer("cannot compile the regex \(pattern): \(error)")
        }
    }

    /// The matches of `regex` and the text between them, in order (`isolated`), or only the text between.
    static func split(_ s: String, _ regex: NSRegularExpression, isolated: Bool) -> [String] {
        let ns = s as NSString
        var out: [String] = []
        var last = 0
        for m in regex.matches(in: s, range: NSRange(location: 0, length: ns.length)) where m.range.length > 0 {
            if m.range.location > last { out.append(ns.substring(with: NSRange(location: last, length: m.range.location - last))) }
            if isolated { out.append(ns.substring(with: m.range)) }
            last = m.range.location + m.range.length
        }
        if last < ns.length { out.append(ns.substring(from: last)) }
        return out
    }

    /// Replace each match of `regex` with `replacing` (a normalizer's Replace with a Regex pattern).
    static func replaceAll(_ s: String, _ regex: NSRegularExpression, with content: String) -> String {
        regex.stringByReplacingMatches(in: s, range: NSRange(location: 0, length: (s as NSString).length),
                                       withTemplate: NSRegularExpression.escapedTemplate(for: content))
    }

    /// Split before each occurrence of `marker` (Hugging Face's MergedWithNext).
    static func splitBefore(_ s: String, _ marker: [Unicode.Scalar]) -> [String] {
        let scalars = Array(s.unicodeScalars)
        var out: [String] = []
        var start = 0
        var i = 1
        while i + marker.count <= scalars.count {
            if Array(scalars[i..<i + marker.count]) == marker {
                out.append(String(String.UnicodeScalarView(scalars[start..<i])))
                start = i
                i += marker.count
            } else {
                i += 1
            }
        }
        out.append(String(String.UnicodeScalarView(scalars[start...])))
        return out
    }
}
