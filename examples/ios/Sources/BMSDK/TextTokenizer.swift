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

    public convenience init(tokenizerJSON url: URL, maxLength: Int) throws {
        guard let data = try? Data(contentsOf: url) else { throw BMSDKError.tokenizer("\(url.path) is missing") }
        try self.init(data: data, maxLength: maxLength)
    }

    public init(data: Data, maxLength: Int) throws {
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let type = (root["model"] as? [String: Any])?["type"] as? String else {
            throw BMSDKError.tokenizer("not a tokenizer.json with a model")
        }
        switch type {
        case "WordPiece": model = try WordPieceTokenizer(root).tokens(_:)
        case "BPE": model = try BPETokenizer(root: root).tokens(_:)
        case "Unigram": model = try UnigramTokenizer(root).tokens(_:)
        default: throw BMSDKError.tokenizer("unsupported tokenizer model \(type) (WordPiece, BPE or Unigram)")
        }
        post = try PostProcessor(root["post_processor"] as? [String: Any])
        self.maxLength = maxLength
    }

    /// The special tokens before and after every text (e.g. [CLS] and [SEP]).
    public var prefixIds: [Int] { post.prefix }
    public var suffixIds: [Int] { post.suffix }

    /// The tokens of one text, with special tokens, truncated to max_length; not padded.
    public func encode(_ text: String) -> Encoding {
        post.apply(model(text), maxLength: maxLength)
    }
}
