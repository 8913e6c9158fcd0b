import Foundation

/// BPE tokenization from a Hugging Face `tokenizer.json`: byte-level BPE (GPT-2, RoBERTa, Llama-3, Qwen: the
/// ByteLevel pre-tokenizer, optionally after a Split regex) and SentencePiece-style BPE (Llama-2, Gemma: `▁` for
/// spaces, `<0xNN>` byte fallback). Encoding: the Pipeline (added tokens, normalizer, pre-tokenizer), then each piece
/// is merged by the ranks of `model.merges`; the post-processor adds bos/eos (or RoBERTa's <s> ... </s>). Decoding
/// goes through `TokenDecoder`. Tokens are compared as Unicode scalars (Swift's String equality is canonical
/// equivalence).
public final class BPETokenizer {
    typealias Key = [Unicode.Scalar]

    private var vocab: [Key: Int] = [:]
    private(set) var strings: [String] = []  // each id's token
    private var special: [Bool] = []
    private var merges: [Int64: (rank: Int, id: Int)] = [:]
    private let pipeline: Pipeline
    private let post: PostProcessor
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

    public convenience init(data: Data) throws {
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw BMSDKError.tokenizer("not a tokenizer.json")
        }
        try self.init(root: root)
    }

    init(root: [String: Any]) throws {
        guard let model = root["model"] as? [String: Any], let rawVocab = model["vocab"] as? [String: Int] else {
            throw BMSDKError.tokenizer("not a tokenizer.json with a model vocab")
        }
        guard (model["type"] as? String) == "BPE" else {
            throw BMSDKError.tokenizer("not a BPE tokenizer: model type \(model["type"] ?? "?")")
        }
        func isEmpty(_ value: Any?) -> Bool { value == nil || value is NSNull || (value as? String) == "" }
        guard isEmpty(model["continuing_subword_prefix"]), isEmpty(model["end_of_word_suffix"]) else {
            throw BMSDKError.tokenizer("BPE with a subword prefix or end-of-word suffix is not supported")
        }
        if let dropout = model["dropout"] as? Double, dropout > 0 {
            throw BMSDKError.tokenizer("BPE with dropout is random: not supported")
        }
        decoder = try TokenDecoder(root["decoder"])
        pipeline = try Pipeline(root)
        post = try PostProcessor(root["post_processor"] as? [String: Any])
        var size = 0
        for (token, id) in rawVocab {
            vocab[Array(token.unicodeScalars)] = id
            size = max(size, id + 1)
        }
        for a in pipeline.added { size = max(size, a.id + 1) }
        strings = Array(repeating: "", count: size)
        special = Array(repeating: false, count: size)
        for (token, id) in rawVocab { strings[id] = token }
        for a in pipeline.added {
            strings[a.id] = Normalizers.scalars(a.content)
            special[a.id] = a.special
        }
        try readMerges(model["merges"] as? [Any] ?? [])
        unkId = (model["unk_token"] as? String).flatMap { vocab[Array($0.unicodeScalars)] }
        byteFallback = model["byte_fallback"] as? Bool ?? false
        fuseUnk = model["fuse_unk"] as? Bool ?? false
        ignoreMerges = model["ignore_merges"] as? Bool ?? false
    }

    public var vocabSize: Int { strings.count }

    /// The token string of an id (an added token's content).
    public func token(_ id: Int) -> String { strings[id] }

    public func isSpecial(_ id: Int) -> Bool { special[id] }

    /// The ids of `text` with the post-processor's special tokens (bos), as Hugging Face's encode.
    public func encode(_ text: String) -> [Int] {
        post.prefix + tokens(text) + post.suffix
    }

    /// The tokens of `text` with character offsets and word indices, without special tokens around it.
    func alignedTokens(_ text: String) throws -> [AlignedToken] {
        guard !byteFallback else { throw BMSDKError.tokenizer("character offsets of BPE with byte fallback are not supported") }
        return try pipeline.encodeAligned(text, ids: { piece in
            let key = Array(piece.unicodeScalars)
            if let hit = cache[key] { return hit }
            let word = bpe(key)
            cache[key] = word
            return word
        }, lengths: { _, ids in
            ids.map { $0 == self.unkId ? 1 : self.strings[$0].unicodeScalars.count }
        }, token: { self.strings[$0] })
    }

    var unknownId: Int? { unkId }

    /// The ids of `text` without special tokens around it.
    func tokens(_ text: String) -> [Int] {
        pipeline.encode(text) { piece in
            let key = Array(piece.unicodeScalars)
            if let hit = cache[key] { return hit }
            let word = bpe(key)
            cache[key] = word
            return word
        }
    }

    /// Text of `ids`, special tokens left out (skip_special_tokens=True).
    public func decode(_ ids: [Int]) -> String {
        decoder.decode(ids.filter { !special[$0] }.map { strings[$0] })
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
}
