import Foundation

/// A `tokenizer.json` post-processor for one sequence: the special tokens around it and the token type ids, as
/// Hugging Face applies them (TemplateProcessing's `single`, BertProcessing and RobertaProcessing: cls ... sep,
/// ByteLevel: offsets only, Sequence). Truncation keeps room for the special tokens, as `enable_truncation` does.
struct PostProcessor {
    private(set) var prefix: [Int] = []
    private(set) var suffix: [Int] = []
    private var prefixTypes: [Int] = []
    private var suffixTypes: [Int] = []
    private var sequenceType = 0

    init(_ json: [String: Any]?) throws {
        if let json { try read(json) }
    }

    private mutating func read(_ p: [String: Any]) throws {
        let type = p["type"] as? String ?? "?"
        switch type {
        case "Sequence": for inner in p["processors"] as? [[String: Any]] ?? [] { try read(inner) }
        case "ByteLevel": break  // adjusts offsets only
        case "BertProcessing", "RobertaProcessing":
            guard let cls = (p["cls"] as? [Any])?.last as? Int, let sep = (p["sep"] as? [Any])?.last as? Int else {
                throw BMSDKError.tokenizer("post-processor \(type) without cls and sep ids")
            }
            prefix.append(cls)
            prefixTypes.append(0)
            suffix.append(sep)
            suffixTypes.append(0)
        case "TemplateProcessing":
            let specials = p["special_tokens"] as? [String: [String: Any]] ?? [:]
            var after = false
            for piece in p["single"] as? [[String: Any]] ?? [] {
                if let sequence = piece["Sequence"] as? [String: Any] {
                    after = true
                    sequenceType = sequence["type_id"] as? Int ?? 0
                    continue
                }
                guard let token = piece["SpecialToken"] as? [String: Any], let name = token["id"] as? String,
                      let ids = specials[name]?["ids"] as? [Int] else { throw BMSDKError.tokenizer("bad template \(piece)") }
                let typeId = token["type_id"] as? Int ?? 0
                if after { suffix += ids; suffixTypes += ids.map { _ in typeId } } else { prefix += ids; prefixTypes += ids.map { _ in typeId } }
            }
        default: throw BMSDKError.tokenizer("unsupported tokenizer post-processor \(type)")
        }
    }

    /// `tokens` cut to leave room for the special tokens within `maxLength`, then wrapped in them.
    func apply(_ tokens: [Int], maxLength: Int) -> TextTokenizer.Encoding {
        let kept = Array(tokens.prefix(max(maxLength - prefix.count - suffix.count, 0)))
        let ids = prefix + kept + suffix
        return TextTokenizer.Encoding(inputIds: ids, attentionMask: Array(repeating: 1, count: ids.count),
                                      tokenTypeIds: prefixTypes + kept.map { _ in sequenceType } + suffixTypes)
    }
}
