import Foundation

/// The tokenizer of a text model, read from the artifact's `tokenizer/tokenizer.json` and applied as bmsdk's Python
/// pre-processing (Hugging Face `tokenizers`, no padding, truncation to max_length): WordPiece (BERT), BPE (RoBERTa
/// and other byte-level BPE; SentencePiece-style BPE) and Unigram (XLM-RoBERTa, ALBERT, DeBERTa-v2), each with its
/// normalizer, pre-tokenizer, added tokens and post-processor. A tokenizer.json using a part this package does not
/// implement is refused here, at load, with the part's name: it never gives different ids silently.
public final class TextTokenizer {
    public struct Encoding: Equatable {
        public let inputIds: [Int]
        public let attentionMask: [Int]
        public let tokenTypeIds: [Int]
    }

    private let model: (String) -> [Int]
    private let post: PostProcessor
    public let maxLength: Int
    private var aligned: ((String) throws -> [AlignedToken])?
    private var tokenStrings: [Int: String] = [:]
    private var decoder: TokenDecoder?
    /// The id of the model's unknown token, or nil.
    public private(set) var unkId: Int?
    /// Whether the model marks word-continuing pieces (WordPiece's "##").
    public private(set) var wordAware = false

    public convenience init(tokenizerJSON url: URL, maxLength: Int) throws {
        guard let data = try? Data(contentsOf: url) else { throw BMSDKError.tokenizer("\(url.path) is missing") }
        try self.init(data: data, maxLength: maxLength)
    }

    public init(data: Data, maxLength: Int) throws {
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let type = (root["model"] as? [String: Any])?["type"] as? String else {
            throw BMSDKError.tokenizer("not a tokenizer.json with a model")
        }
        var strings: [Int: String] = [:]
        for (token, id) in (root["model"] as? [String: Any])?["vocab"] as? [String: Int] ?? [:] { strings[id] = token }
        for t in root["added_tokens"] as? [[String: Any]] ?? [] {
            if let id = t["id"] as? Int, let content = t["content"] as? String { strings[id] = content }
        }
        switch type {
        case "WordPiece":
            let wp = try WordPieceTokenizer(root)
            model = wp.tokens(_:)
            aligned = { try wp.alignedTokens($0, strings: strings) }
            unkId = wp.unkId
            wordAware = !wp.prefix.isEmpty
        case "BPE":
            let bpe = try BPETokenizer(root: root)
            model = bpe.tokens(_:)
            aligned = bpe.alignedTokens(_:)
            unkId = bpe.unknownId
        case "Unigram": model = try UnigramTokenizer(root).tokens(_:)
        default: throw BMSDKError.tokenizer("unsupported tokenizer model \(type) (WordPiece, BPE or Unigram)")
        }
        post = try PostProcessor(root["post_processor"] as? [String: Any])
        self.maxLength = maxLength
        tokenStrings = strings
        decoder = root["decoder"].flatMap { $0 is NSNull ? nil : $0 }.map { try? TokenDecoder($0) } ?? nil
    }

    private func alignedTokens(_ text: String) throws -> [AlignedToken] {
        guard let aligned else { throw BMSDKError.tokenizer("character offsets are implemented for WordPiece and BPE tokenizers only") }
        return try aligned(text)
    }

    /// One text with token strings, character offsets, special-tokens mask and word ids (token classification).
    public func encodeWithOffsets(_ text: String) throws -> SpanEncoding {
        post.single(try alignedTokens(text), maxLength: maxLength) { self.tokenStrings[$0] ?? "" }
    }

    /// A (question, context) pair as bmsdk's question-answering pre-processing encodes it: the context alone is
    /// truncated, into windows of max_length tokens overlapping by `stride` context tokens (the first window first).
    public func encodePair(question: String, context: String, stride: Int) throws -> [SpanEncoding] {
        try post.pair(try alignedTokens(question), try alignedTokens(context), maxLength: maxLength, stride: stride) {
            self.tokenStrings[$0] ?? ""
        }
    }

    /// Tokens back to text as transformers' convert_tokens_to_string (the tokenizer's decoder; none: spaces).
    public func joinTokens(_ tokens: [String]) -> String {
        decoder.map { $0.decode(tokens) } ?? tokens.joined(separator: " ")
    }

    /// The special tokens before and after every text (e.g. [CLS] and [SEP]).
    public var prefixIds: [Int] { post.prefix }
    public var suffixIds: [Int] { post.suffix }

    /// The tokens of one text, with special tokens, truncated to max_length; not padded.
    public func encode(_ text: String) -> Encoding {
        post.apply(model(text), maxLength: maxLength)
    }
}
