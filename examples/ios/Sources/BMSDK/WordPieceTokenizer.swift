import Foundation

/// A WordPiece `tokenizer.json` (BERT: BertNormalizer, BertPreTokenizer, WordPiece) as Hugging Face `tokenizers`
/// applies it: the Pipeline's added tokens, normalizer and pre-tokenizer, then greedy longest-match WordPiece with
/// the "##" prefix on each word; a word with no match, or longer than max_input_chars_per_word, becomes [UNK].
/// Special tokens around the text come from the PostProcessor (TextTokenizer puts them together).
struct WordPieceTokenizer {
    let vocab: [[Unicode.Scalar]: Int]
    let unkId: Int
    let prefix: [Unicode.Scalar]
    let maxCharsPerWord: Int
    let pipeline: Pipeline

    init(_ root: [String: Any]) throws {
        guard let model = root["model"] as? [String: Any], (model["type"] as? String) == "WordPiece",
              let rawVocab = model["vocab"] as? [String: Int] else {
            throw BMSDKError.tokenizer("not a WordPiece tokenizer with a vocab")
        }
        var vocab: [[Unicode.Scalar]: Int] = [:]
        for (token, id) in rawVocab { vocab[Array(token.unicodeScalars)] = id }
        let unk = model["unk_token"] as? String ?? "[UNK]"
        guard let unkId = vocab[Array(unk.unicodeScalars)] else { throw BMSDKError.tokenizer("the vocab has no \(unk)") }
        self.vocab = vocab
        self.unkId = unkId
        prefix = Array((model["continuing_subword_prefix"] as? String ?? "##").unicodeScalars)
        maxCharsPerWord = model["max_input_chars_per_word"] as? Int ?? 100
        pipeline = try Pipeline(root)
    }

    /// The tokens of one text with character offsets and word indices, without special tokens around it.
    func alignedTokens(_ text: String, strings: [Int: String]) throws -> [AlignedToken] {
        try pipeline.encodeAligned(text, ids: { wordPiece(Array($0.unicodeScalars)) }, lengths: { piece, ids in
            if ids == [unkId] { return [piece.unicodeScalars.count] }
            return ids.enumerated().map { t, id in
                let token = Array((strings[id] ?? "").unicodeScalars)
                return t > 0 && token.starts(with: prefix) ? token.count - prefix.count : token.count
            }
        }, token: { strings[$0] ?? "" })
    }

    /// The ids of one text, without special tokens around it.
    func tokens(_ text: String) -> [Int] {
        pipeline.encode(text) { wordPiece(Array($0.unicodeScalars)) }
    }

    func wordPiece(_ word: [Unicode.Scalar]) -> [Int] {
        if word.count > maxCharsPerWord { return [unkId] }
        var pieces: [Int] = []
        var start = 0
        while start < word.count {
            var end = word.count
            var found: Int?
            while start < end {
                let piece = (start > 0 ? prefix : []) + word[start..<end]
                if let id = vocab[piece] { found = id; break }
                end -= 1
            }
            guard let id = found else { return [unkId] }
            pieces.append(id)
            start = end
        }
        return pieces
    }
}
