import Foundation

/// A `tokenizer.json` post-processor for one sequence: the special tokens around it and the token type ids, as
/// Hugging Face applies them (TemplateProcessing's `single`, BertProcessing and RobertaProcessing: cls ... sep,
/// ByteLevel: offsets only, Sequence). Truncation keeps room for the special tokens, as `enable_truncation` does.
struct PostProcessor {
    private(set) var prefix: [Int] = []
    private(set) var suffix: [Int] = []
    private(set) var prefixTypes: [Int] = []
    private(set) var suffixTypes: [Int] = []
    private(set) var sequenceType = 0
    private(set) var prefixTypeIds: [Int] = []
    /// The pair template: (-1, type) the first text, (-2, type) the second, (id, type) a special token.
    private(set) var pairTemplate: [(Int, Int)] = []
    private(set) var trimOffsets = false
    private(set) var trimPrefixSpace = false

    init(_ json: [String: Any]?) throws {
        if let json { try read(json) }
    }

    private mutating func read(_ p: [String: Any]) throws {
        let type = p["type"] as? String ?? "?"
        switch type {
        case "Sequence": for inner in p["processors"] as? [[String: Any]] ?? [] { try read(inner) }
        case "ByteLevel":  // adjusts offsets only
            trimOffsets = trimOffsets || (p["trim_offsets"] as? Bool ?? true)
            trimPrefixSpace = trimPrefixSpace || (p["add_prefix_space"] as? Bool ?? false)
        case "BertProcessing", "RobertaProcessing":
            guard let cls = (p["cls"] as? [Any])?.last as? Int, let sep = (p["sep"] as? [Any])?.last as? Int else {
                throw BMSDKError.tokenizer("post-processor \(type) without cls and sep ids")
            }
            prefix.append(cls)
            prefixTypes.append(0)
            suffix.append(sep)
            suffixTypes.append(0)
            if type == "BertProcessing" {  // [CLS] A [SEP] B [SEP], B and its [SEP] type 1
                pairTemplate = [(cls, 0), (-1, 0), (sep, 0), (-2, 1), (sep, 1)]
            } else {  // <s> A </s> </s> B </s>, all type 0
                pairTemplate = [(cls, 0), (-1, 0), (sep, 0), (sep, 0), (-2, 0), (sep, 0)]
                trimOffsets = trimOffsets || (p["trim_offsets"] as? Bool ?? true)
                trimPrefixSpace = trimPrefixSpace || (p["add_prefix_space"] as? Bool ?? false)
            }
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
            pairTemplate = []
            for piece in p["pair"] as? [[String: Any]] ?? [] {
                if let sequence = piece["Sequence"] as? [String: Any] {
                    pairTemplate.append(((sequence["id"] as? String) == "B" ? -2 : -1, sequence["type_id"] as? Int ?? 0))
                    continue
                }
                guard let token = piece["SpecialToken"] as? [String: Any], let name = token["id"] as? String,
                      let ids = specials[name]?["ids"] as? [Int] else { throw BMSDKError.tokenizer("bad pair template \(piece)") }
                pairTemplate += ids.map { ($0, token["type_id"] as? Int ?? 0) }
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
