import Foundation

/// One token with its character offsets (Unicode scalars of the original text, as Python's str indices) and the
/// index of its word (pre-token).
struct AlignedToken {
    let id: Int
    let value: String
    var start: Int
    var end: Int
    let word: Int
}

/// One encoded text (or one window of a question + context pair) with what span tasks read besides the ids, as
/// Hugging Face's Encoding holds it: token strings, character offsets [start, end) (special tokens [0, 0]), the
/// special-tokens mask, sequence ids (-1 special, 0 first text, 1 second) and word ids (-1 special tokens).
public struct SpanEncoding {
    public let ids: [Int]
    public let typeIds: [Int]
    public let tokens: [String]
    public let offsets: [[Int]]
    public let special: [Int]
    public let sequenceIds: [Int]
    public let wordIds: [Int]
    public var attentionMask: [Int] { Array(repeating: 1, count: ids.count) }

    /// The characters [start, end) of word `word` of sequence `sequence` within this encoding, or nil.
    public func wordToChars(_ word: Int, sequence: Int) -> (Int, Int)? {
        var first = -1, last = -1
        for i in ids.indices where wordIds[i] == word && sequenceIds[i] == sequence {
            if first < 0 { first = i }
            last = i
        }
        return first < 0 ? nil : (offsets[first][0], offsets[last][1])
    }
}

/// Text with, for each scalar, the span [start, end) of original scalars it came from.
struct AlignedText {
    var s: [Unicode.Scalar]
    var start: [Int]
    var end: [Int]

    func sub(_ a: Int, _ b: Int) -> AlignedText {
        AlignedText(s: Array(s[a..<b]), start: Array(start[a..<b]), end: Array(end[a..<b]))
    }
}

extension Pipeline {
    private struct Part {
        var text: AlignedText?
        var token: AlignedToken?
        var atStart: Bool
    }

    /// The tokens of `text` (no post-processor special tokens) with character offsets, as Hugging Face's Encoding
    /// before the post-processor: offsets follow each character through the normalizer (applied per character: one
    /// that works across characters, as NFC or Strip, is refused) and the pre-tokenizer (splits, and ByteLevel's
    /// byte alphabet: each byte maps to its character); word = the pre-token's index.
    func encodeAligned(_ text: String, ids: (String) -> [Int], lengths: (String, [Int]) -> [Int],
                       token: (Int) -> String) throws -> [AlignedToken] {
        let scalars = Array(text.unicodeScalars)
        let whole = AlignedText(s: scalars, start: Array(scalars.indices), end: scalars.indices.map { $0 + 1 })
        var out: [AlignedToken] = []
        var word = 0
        for p1 in Self.splitAligned(whole, raw, &word) {
            if let t = p1.token { out.append(t); continue }
            let normalized = try normalizeAligned(p1.text!)
            for p2 in Self.splitAligned(normalized, afterNormalizer, &word) {
                if let t = p2.token { out.append(t); continue }
                var pieces = [p2.text!]
                for step in preTokenizer {
                    var next: [AlignedText] = []
                    for (i, piece) in pieces.enumerated() where !piece.s.isEmpty {
                        next += try Self.preTokenizeAligned(step, piece, p1.atStart && p2.atStart && i == 0)
                    }
                    pieces = next
                }
                for piece in pieces where !piece.s.isEmpty {
                    let string = Normalizers.scalars(piece.s)
                    let pieceIds = ids(string)
                    let lens = lengths(string, pieceIds)
                    var at = 0
                    for (t, id) in pieceIds.enumerated() {
                        let from = at
                        at = min(at + lens[t], piece.s.count)
                        let s0 = from < piece.s.count ? piece.start[from] : piece.end[piece.s.count - 1]
                        let e0 = at > from ? piece.end[at - 1] : s0
                        out.append(AlignedToken(id: id, value: token(id), start: s0, end: e0, word: word))
                    }
                    word += 1
                }
            }
        }
        return out
    }

    private func normalizeAligned(_ segment: AlignedText) throws -> AlignedText {
        var s: [Unicode.Scalar] = [], st: [Int] = [], en: [Int] = []
        for (i, c) in segment.s.enumerated() {
            let n = Array(normalizer(String(Character(c))).unicodeScalars)
            s += n
            st += n.map { _ in segment.start[i] }
            en += n.map { _ in segment.end[i] }
        }
        let whole = Array(normalizer(Normalizers.scalars(segment.s)).unicodeScalars)
        guard whole == s else {
            throw BMSDKError.tokenizer("character offsets need a normalizer that works per character; this tokenizer's changes \"\(Normalizers.scalars(segment.s))\" across characters")
        }
        return AlignedText(s: s, start: st, end: en)
    }

    private static func find(_ s: [Unicode.Scalar], _ part: [Unicode.Scalar], from: Int) -> Int? {
        guard part.count <= s.count else { return nil }
        var i = from
        while i + part.count <= s.count {
            if s[i..<i + part.count].elementsEqual(part) { return i }
            i += 1
        }
        return nil
    }

    private static func preTokenizeAligned(_ step: PreTokenizers.Step, _ piece: AlignedText, _ first: Bool) throws -> [AlignedText] {
        let outs = step(Normalizers.scalars(piece.s), first).map { Array($0.unicodeScalars) }
        var result: [AlignedText] = []
        var at = 0
        var splits = true
        for o in outs {  // a splitting step: each output is a stretch of the input
            guard let i = find(piece.s, o, from: at) else { splits = false; break }
            result.append(piece.sub(i, i + o.count))
            at = i + o.count
        }
        if splits { return result }
        result = []
        at = 0
        for (k, o) in outs.enumerated() {  // ByteLevel: each output character is one UTF-8 byte of the input
            guard let bytes = ByteLevel.decode(o), let part = String(bytes: bytes, encoding: .utf8) else {
                throw BMSDKError.tokenizer("character offsets: this pre-tokenizer rewrites the text (only splitting ones and ByteLevel keep offsets)")
            }
            let ps = Array(part.unicodeScalars)
            let prefix = k == 0 && ps.first == " " && !(piece.s.first == " ")  // add_prefix_space: the first character's offsets
            var st: [Int] = [], en: [Int] = []
            for (j, c) in ps.enumerated() {
                let added = prefix && j == 0
                let src = added ? 0 : min(at, piece.s.count - 1)
                for _ in 0..<String(Character(c)).utf8.count {
                    st.append(piece.start[src])
                    en.append(piece.end[src])
                }
                if !added { at += 1 }
            }
            result.append(AlignedText(s: o, start: st, end: en))
        }
        return result
    }

    private static func splitAligned(_ text: AlignedText, _ tokens: [Added], _ word: inout Int) -> [Part] {
        var parts: [Part] = []
        var start = 0
        while true {
            let match = next(text.s, from: start, tokens)
            let end = match?.begin ?? text.s.count
            if end > start || (match == nil && start == 0) { parts.append(Part(text: text.sub(start, end), token: nil, atStart: start == 0)) }
            guard let match else { return parts }
            let a = tokens[match.index]
            parts.append(Part(text: nil, token: AlignedToken(id: a.id, value: Normalizers.scalars(a.content), start: text.start[match.begin],
                                                             end: text.end[match.end - 1], word: word), atStart: false))
            word += 1
            start = match.end
        }
    }
}

extension PostProcessor {
    /// One text's tokens with offsets, cut to leave room for the special tokens within `maxLength`, then wrapped.
    func single(_ tokens: [AlignedToken], maxLength: Int, strings: (Int) -> String) -> SpanEncoding {
        let kept = Array(tokens.prefix(max(maxLength - prefix.count - suffix.count, 0)))
        let template = zip(prefix, prefixTypes).map { ($0, $1) } + [(-1, sequenceType)] + zip(suffix, suffixTypes).map { ($0, $1) }
        return build(template, trim(kept), [], strings)
    }

    /// A (first, second) pair as `enable_truncation(max_length, stride, strategy="only_second")` encodes it: the
    /// second text cut into windows that overlap by `stride` tokens, each after the whole first text.
    func pair(_ first: [AlignedToken], _ second: [AlignedToken], maxLength: Int, stride: Int, strings: (Int) -> String) throws -> [SpanEncoding] {
        guard !pairTemplate.isEmpty else { throw BMSDKError.tokenizer("this tokenizer's post-processor has no pair template") }
        let room = maxLength - pairTemplate.filter { $0.0 >= 0 }.count
        var windows: [[AlignedToken]] = []
        if first.count + second.count <= room {
            windows = [second]
        } else {
            let toRemove = first.count + second.count - room
            guard second.count > toRemove else { throw BMSDKError.input("the question is too long for max_length \(maxLength): shorten it") }
            let most = second.count - toRemove
            guard stride < most else { throw BMSDKError.input("stride \(stride) must be below the \(most) context tokens a window holds") }
            var start = 0
            while true {
                let stop = min(start + most, second.count)
                windows.append(Array(second[start..<stop]))
                if stop == second.count { break }
                start += most - stride
            }
        }
        let a = trim(first)
        return windows.map { build(pairTemplate, a, trim($0), strings) }
    }

    /// ByteLevel / RoBERTa trim_offsets: offsets leave out the spaces at either end of a token.
    private func trim(_ tokens: [AlignedToken]) -> [AlignedToken] {
        guard trimOffsets else { return tokens }
        func isSpace(_ c: Unicode.Scalar) -> Bool { c == "\u{0120}" || c.properties.isWhitespace }
        return tokens.enumerated().map { i, t in
            let v = Array(t.value.unicodeScalars)
            let lead = v.prefix { isSpace($0) }.count
            let trail = v.reversed().prefix { isSpace($0) }.count
            var out = t
            if lead > 0 && !((i == 0 || t.start == 0) && trimPrefixSpace && lead == 1) { out.start = min(t.start + lead, t.end) }
            if trail > 0 && out.end >= trail { out.end = max(out.end - trail, out.start) }
            return out
        }
    }

    private func build(_ template: [(Int, Int)], _ a: [AlignedToken], _ b: [AlignedToken], _ strings: (Int) -> String) -> SpanEncoding {
        var ids: [Int] = [], types: [Int] = [], tokens: [String] = [], offsets: [[Int]] = []
        var special: [Int] = [], sequence: [Int] = [], words: [Int] = []
        for (id, type) in template {
            if id >= 0 {
                ids.append(id); types.append(type); tokens.append(strings(id)); offsets.append([0, 0])
                special.append(1); sequence.append(-1); words.append(-1)
                continue
            }
            for t in id == -1 ? a : b {
                ids.append(t.id); types.append(type); tokens.append(t.value); offsets.append([t.start, t.end])
                special.append(0); sequence.append(id == -1 ? 0 : 1); words.append(t.word)
            }
        }
        return SpanEncoding(ids: ids, typeIds: types, tokens: tokens, offsets: offsets, special: special,
                            sequenceIds: sequence, wordIds: words)
    }
}
