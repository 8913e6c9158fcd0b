import Foundation

/// A `tokenizer.json` pre-tokenizer as a list of steps, each splitting every piece further: Sequence, ByteLevel
/// (GPT-2's regex and byte alphabet), Split (Isolated or Removed), Metaspace, WhitespaceSplit and BertPreTokenizer.
/// Any other type is refused when the tokenizer is read.
///
/// Regexes run on NSRegularExpression (ICU), not Oniguruma as in Hugging Face: they agree on the GPT-2 and Llama-3
/// patterns for ordinary text; rare whitespace and category edge cases may split differently. Metaspace's
/// prepend_scheme "first" prepends to the first piece of the text (Hugging Face: to a piece at offset 0 of the
/// original text, which differs only when the text starts with whitespace that an earlier step removed).
enum PreTokenizers {
    /// One step: a piece of text (and whether it starts the input) into pieces.
    typealias Step = (String, Bool) -> [String]

    static let gpt2Split = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

    static func read(_ json: [String: Any]?) throws -> [Step] {
        guard let p = json else { return [] }
        let type = p["type"] as? String ?? "?"
        switch type {
        case "Sequence":
            return try (p["pretokenizers"] as? [[String: Any]] ?? []).flatMap(read)
        case "ByteLevel":
            let prefixSpace = p["add_prefix_space"] as? Bool ?? false
            let regex = (p["use_regex"] as? Bool ?? true) ? try Self.regex(gpt2Split) : nil
            return [{ piece, _ in
                let s = prefixSpace && piece.unicodeScalars.first.map({ $0 != " " }) == true ? " " + piece : piece
                let parts = regex.map { split(s, $0, isolated: true) } ?? [s]
                return parts.map { Normalizers.scalars(ByteLevel.encode($0)) }
            }]
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
            return [{ piece, _ in split(piece, regex, isolated: behavior == "Isolated") }]
        case "Metaspace":
            let replacement = p["replacement"] as? String ?? "▁"
            let scheme = p["prepend_scheme"] as? String ?? ((p["add_prefix_space"] as? Bool ?? true) ? "always" : "never")
            let splits = p["split"] as? Bool ?? true
            let marker = Array(replacement.unicodeScalars)
            return [{ piece, first in
                var s = TokenDecoder.replace(piece, " ", replacement)
                let prepend = scheme == "always" || (scheme == "first" && first)
                if prepend && !s.unicodeScalars.isEmpty && !s.unicodeScalars.starts(with: marker) { s = replacement + s }
                return splits ? splitBefore(s, marker) : [s]
            }]
        case "WhitespaceSplit":
            return [{ piece, _ in words(piece, punctuation: false) }]
        case "BertPreTokenizer":
            return [{ piece, _ in words(piece, punctuation: true) }]
        default: throw BMSDKError.tokenizer("unsupported tokenizer pre-tokenizer \(type)")
        }
    }

    static func regex(_ pattern: String) throws -> NSRegularExpression {
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

    /// Split before each occurrence of `marker` (Hugging Face's MergedWithNext).
    static func splitBefore(_ s: String, _ marker: [Unicode.Scalar]) -> [String] {
        let scalars = Array(s.unicodeScalars)
        var out: [String] = []
        var start = 0
        var i = 1
        while i + marker.count <= scalars.count {
            if Array(scalars[i..<i + marker.count]) == marker {
                out.append(Normalizers.scalars(scalars[start..<i]))
                start = i
                i += marker.count
            } else {
                i += 1
            }
        }
        out.append(Normalizers.scalars(scalars[start...]))
        return out
    }

    /// Words between whitespace (dropped); with `punctuation`, each punctuation scalar is a word of its own.
    static func words(_ text: String, punctuation: Bool) -> [String] {
        var words: [String] = []
        var current: [Unicode.Scalar] = []
        for s in text.unicodeScalars {
            if Normalizers.isWhitespace(s) {
                if !current.isEmpty { words.append(Normalizers.scalars(current)); current = [] }
            } else if punctuation && isPunctuation(s) {
                if !current.isEmpty { words.append(Normalizers.scalars(current)); current = [] }
                words.append(Normalizers.scalars([s]))
            } else {
                current.append(s)
            }
        }
        if !current.isEmpty { words.append(Normalizers.scalars(current)) }
        return words
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
}
