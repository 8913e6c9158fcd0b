import Foundation

/// What a `tokenizer.json` does before its model, as Hugging Face `tokenizers` does it: added tokens are found in the
/// raw text first (leftmost, then longest; lstrip/rstrip take the whitespace beside them), each other segment is
/// normalized, then added tokens marked `normalized` are found in it, and each remaining segment is pre-tokenized
/// into pieces that the model (WordPiece, BPE, Unigram) turns into ids. Added tokens with `single_word` are refused.
struct Pipeline {
    struct Added {
        let content: [Unicode.Scalar]
        let id: Int
        let special: Bool
        let lstrip: Bool
        let rstrip: Bool
        let normalized: Bool
    }

    let added: [Added]
    let raw: [Added]
    let afterNormalizer: [Added]
    let normalizer: Normalizers.Normalize
    let preTokenizer: [PreTokenizers.Step]

    init(_ root: [String: Any]) throws {
        var added: [Added] = []
        for t in root["added_tokens"] as? [[String: Any]] ?? [] {
            let content = t["content"] as? String ?? ""
            guard !(t["single_word"] as? Bool ?? false) else {
                throw BMSDKError.tokenizer("added token \(content): single_word is not supported")
            }
            added.append(Added(content: Array(content.unicodeScalars), id: t["id"] as? Int ?? 0,
                               special: t["special"] as? Bool ?? false, lstrip: t["lstrip"] as? Bool ?? false,
                               rstrip: t["rstrip"] as? Bool ?? false, normalized: t["normalized"] as? Bool ?? false))
        }
        self.added = added
        let matchable = added.filter { !$0.content.isEmpty }.sorted { $0.content.count > $1.content.count }
        raw = matchable.filter { !$0.normalized }
        afterNormalizer = matchable.filter(\.normalized)
        normalizer = try Normalizers.read(root["normalizer"] as? [String: Any])
        preTokenizer = try PreTokenizers.read(root["pre_tokenizer"] as? [String: Any])
    }

    /// The ids of `text` without the post-processor's special tokens; `model` turns one piece into ids.
    func encode(_ text: String, model: (String) -> [Int]) -> [Int] {
        var ids: [Int] = []
        Self.split(Array(text.unicodeScalars), raw, into: &ids) { segment, atStart, ids in
            let normalized = Array(normalizer(Normalizers.scalars(segment)).unicodeScalars)
            Self.split(normalized, afterNormalizer, into: &ids) { part, first, ids in
                var pieces = [Normalizers.scalars(part)]
                for step in preTokenizer {
                    // Hugging Face drops empty pieces (and prepends nothing to them)
                    pieces = pieces.enumerated().filter { !$0.element.unicodeScalars.isEmpty }
                        .flatMap { step($0.element, atStart && first && $0.offset == 0) }
                }
                for piece in pieces where !piece.unicodeScalars.isEmpty { ids += model(piece) }
            }
        }
        return ids
    }

    /// Hands each stretch of `s` between added tokens to `segment`, and adds each token's id, in order.
    private static func split(_ s: [Unicode.Scalar], _ tokens: [Added], into ids: inout [Int],
                              _ segment: (ArraySlice<Unicode.Scalar>, Bool, inout [Int]) -> Void) {
        var start = 0
        while true {
            let match = next(s, from: start, tokens)
            let end = match?.begin ?? s.count
            if end > start || (match == nil && start == 0) { segment(s[start..<end], start == 0, &ids) }
            guard let match else { return }
            ids.append(tokens[match.index].id)
            start = match.end
        }
    }

    static func next(_ s: [Unicode.Scalar], from: Int, _ tokens: [Added]) -> (begin: Int, end: Int, index: Int)? {
        var i = from
        while i < s.count {
            for (k, a) in tokens.enumerated() where i + a.content.count <= s.count && s[i..<i + a.content.count].elementsEqual(a.content) {
                var begin = i, end = i + a.content.count
                while a.lstrip && begin > from && Normalizers.isWhitespace(s[begin - 1]) { begin -= 1 }
                while a.rstrip && end < s.count && Normalizers.isWhitespace(s[end]) { end += 1 }
                return (begin, end, k)
            }
            i += 1
        }
        return nil
    }
}
