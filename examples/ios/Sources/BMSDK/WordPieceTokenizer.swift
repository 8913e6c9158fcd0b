import Foundation

/// BERT tokenization identical to Hugging Face `tokenizers` (BertNormalizer, BertPreTokenizer, WordPiece,
/// [CLS] ... [SEP] template), read from the artifact's `tokenizer.json`.
///
/// Works on Unicode scalars, as the Rust implementation works on `char`s: clean text (drop NUL, U+FFFD and
/// control characters, whitespace becomes a space), pad CJK ideographs with spaces, strip accents (NFD, drop
/// non-spacing marks), lowercase; split on whitespace and punctuation; greedy longest-match WordPiece with "##".
public struct WordPieceTokenizer {
    public struct Encoding: Equatable {
        public let inputIds: [Int]
        public let attentionMask: [Int]
        public let tokenTypeIds: [Int]
    }

    let vocab: [[Unicode.Scalar]: Int]
    let unkId: Int
    let clsId: Int
    let sepId: Int
    let prefix: [Unicode.Scalar]
    let maxCharsPerWord: Int
    let cleanText: Bool
    let handleChineseChars: Bool
    let stripAccents: Bool
    let lowercase: Bool
    public let maxLength: Int

    public init(tokenizerJSON url: URL, maxLength: Int) throws {
        guard let data = try? Data(contentsOf: url),
              let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let model = root["model"] as? [String: Any], let rawVocab = model["vocab"] as? [String: Int] else {
            throw BMSDKError.tokenizer("\(url.path) is not a tokenizer.json with a WordPiece vocab")
        }
        guard (model["type"] as? String) == "WordPiece" else {
            throw BMSDKError.tokenizer("model type \(model["type"] ?? "?") is not WordPiece")
        }
        var vocab: [[Unicode.Scalar]: Int] = [:]
        for (token, id) in rawVocab { vocab[Array(token.unicodeScalars)] = id }
        func id(_ token: String) throws -> Int {
            guard let id = vocab[Array(token.unicodeScalars)] else { throw BMSDKError.tokenizer("the vocab has no \(token)") }
            return id
        }
        let normalizer = root["normalizer"] as? [String: Any] ?? [:]
        self.vocab = vocab
        self.unkId = try id(model["unk_token"] as? String ?? "[UNK]")
        self.clsId = try id("[CLS]")
        self.sepId = try id("[SEP]")
        self.prefix = Array((model["continuing_subword_prefix"] as? String ?? "##").unicodeScalars)
        self.maxCharsPerWord = model["max_input_chars_per_word"] as? Int ?? 100
        self.cleanText = normalizer["clean_text"] as? Bool ?? true
        self.handleChineseChars = normalizer["handle_chinese_chars"] as? Bool ?? true
        self.lowercase = normalizer["lowercase"] as? Bool ?? true
        self.stripAccents = normalizer["strip_accents"] as? Bool ?? self.lowercase  // null: follows lowercase
        self.maxLength = maxLength
    }

    /// One text -> ids with [CLS]/[SEP], truncated to `maxLength` tokens in all; no padding.
    public func encode(_ text: String) -> Encoding {
        var ids: [Int] = []
        for word in preTokenize(normalize(text)) { ids += wordPiece(word) }
        ids = [clsId] + ids.prefix(max(maxLength - 2, 0)) + [sepId]
        return Encoding(inputIds: ids, attentionMask: Array(repeating: 1, count: ids.count),
                        tokenTypeIds: Array(repeating: 0, count: ids.count))
    }

    func normalize(_ text: String) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        for s in text.unicodeScalars {
            if cleanText {
                if s.value == 0 || s.value == 0xFFFD || Self.isControl(s) { continue }
                if Self.isWhitespace(s) { out.append(" "); continue }
            }
            if handleChineseChars && Self.isChinese(s) { out += [" ", s, " "]; continue }
            out.append(s)
        }
        if stripAccents {
            let decomposed = String(String.UnicodeScalarView(out)).decomposedStringWithCanonicalMapping
            out = decomposed.unicodeScalars.filter { $0.properties.generalCategory != .nonspacingMark }
        }
        if lowercase { out = out.flatMap { $0.properties.lowercaseMapping.unicodeScalars } }
        return out
    }

    func preTokenize(_ scalars: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        var words: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        for s in scalars {
            if s.properties.isWhitespace {
                if !current.isEmpty { words.append(current); current = [] }
            } else if Self.isPunctuation(s) {
                if !current.isEmpty { words.append(current); current = [] }
                words.append([s])
            } else {
                current.append(s)
            }
        }
        if !current.isEmpty { words.append(current) }
        return words
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

    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == "\t" || s == "\n" || s == "\r" || s.properties.isWhitespace
    }

    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned: return true
        default: return false
        }
    }

    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        if s.isASCII && (0x21...0x2F ~= s.value || 0x3A...0x40 ~= s.value || 0x5B...0x60 ~= s.value || 0x7B...0x7E ~= s.value) {
            return true
        }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation: return true
        default: return false
        }
    }

    static func isChinese(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
             0x2B820...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F: return true
        default: return false
        }
    }
}
