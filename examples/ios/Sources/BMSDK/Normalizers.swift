import Foundation

/// A `tokenizer.json` normalizer as one function, applied as Hugging Face `tokenizers` applies it: Sequence, NFC,
/// NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, StripAccents, Precompiled (SentencePiece's charsmap, exact)
/// and BertNormalizer. Any other type is refused when the tokenizer is read, never skipped.
///
/// Text is handled as Unicode scalars, as Rust handles `char`s (Swift's String comparison is canonical
/// equivalence, which the tokenizer must not use). Character properties come from the Swift runtime's Unicode
/// tables, which may differ from Rust's crates on code points added to Unicode recently.
enum Normalizers {
    typealias Normalize = (String) -> String

    static func read(_ json: [String: Any]?) throws -> Normalize {
        guard let n = json else { return { $0 } }
        let type = n["type"] as? String ?? "?"
        switch type {
        case "Sequence":
            let steps = try (n["normalizers"] as? [[String: Any]] ?? []).map(read)
            return { text in steps.reduce(text) { $1($0) } }
        case "NFC": return { $0.precomposedStringWithCanonicalMapping }
        case "NFD": return { $0.decomposedStringWithCanonicalMapping }
        case "NFKC": return { $0.precomposedStringWithCompatibilityMapping }
        case "NFKD": return { $0.decomposedStringWithCompatibilityMapping }
        case "Lowercase": return lowercase
        case "StripAccents": return stripMarks
        case "Strip":
            let left = n["strip_left"] as? Bool ?? true, right = n["strip_right"] as? Bool ?? true
            return { strip($0, left: left, right: right) }
        case "Prepend":
            let p = n["prepend"] as? String ?? ""
            return { $0.unicodeScalars.isEmpty ? $0 : p + $0 }
        case "Replace":
            let pattern = n["pattern"] as? [String: Any] ?? [:]
            let content = n["content"] as? String ?? ""
            if let from = pattern["String"] as? String { return { TokenDecoder.replace($0, from, content) } }
            guard let re = pattern["Regex"] as? String else { throw BMSDKError.tokenizer("normalizer Replace without a pattern") }
            let regex = try PreTokenizers.regex(re)
            return { replaceAll($0, regex, with: content) }
        case "Precompiled":
            return try Precompiled(base64: n["precompiled_charsmap"] as? String ?? "").normalize
        case "BertNormalizer": return bert(n)
        default: throw BMSDKError.tokenizer("unsupported tokenizer normalizer \(type)")
        }
    }

    static func scalars(_ s: some Sequence<Unicode.Scalar>) -> String { String(String.UnicodeScalarView(s)) }

    /// Rust's char::is_whitespace (the White_Space property), which Hugging Face uses for splitting and stripping.
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool { s.properties.isWhitespace }

    /// Each scalar lowercased on its own (full mapping, no context), as Rust's char::to_lowercase.
    static func lowercase(_ text: String) -> String {
        scalars(text.unicodeScalars.flatMap { $0.properties.lowercaseMapping.unicodeScalars })
    }

    /// Drop combining marks (Mn, Mc, Me), as the StripAccents normalizer.
    static func stripMarks(_ text: String) -> String {
        scalars(text.unicodeScalars.filter {
            switch $0.properties.generalCategory {
            case .nonspacingMark, .spacingMark, .enclosingMark: return false
            default: return true
            }
        })
    }

    static func strip(_ text: String, left: Bool, right: Bool) -> String {
        var s = Array(text.unicodeScalars)[...]
        while left, let first = s.first, isWhitespace(first) { s = s.dropFirst() }
        while right, let last = s.last, isWhitespace(last) { s = s.dropLast() }
        return scalars(s)
    }

    /// Replace each match of `regex` with `content` (a Replace normalizer with a Regex pattern).
    static func replaceAll(_ s: String, _ regex: NSRegularExpression, with content: String) -> String {
        regex.stringByReplacingMatches(in: s, range: NSRange(location: 0, length: (s as NSString).length),
                                       withTemplate: NSRegularExpression.escapedTemplate(for: content))
    }

    /// BertNormalizer: clean text (drop NUL, U+FFFD and control characters; whitespace becomes a space), pad CJK
    /// ideographs with spaces, strip accents (NFD, then drop non-spacing marks), lowercase.
    static func bert(_ n: [String: Any]) -> Normalize {
        let cleanText = n["clean_text"] as? Bool ?? true
        let chineseChars = n["handle_chinese_chars"] as? Bool ?? true
        let lower = n["lowercase"] as? Bool ?? true
        let stripAccents = n["strip_accents"] as? Bool ?? lower  // null: follows lowercase
        return { text in
            var out: [Unicode.Scalar] = []
            for s in text.unicodeScalars {
                if cleanText {
                    if s.value == 0 || s.value == 0xFFFD || isControl(s) { continue }
                    if isWhitespace(s) { out.append(" "); continue }
                }
                if chineseChars && isChinese(s) { out += [" ", s, " "]; continue }
                out.append(s)
            }
            if stripAccents {
                let decomposed = scalars(out).decomposedStringWithCanonicalMapping
                out = decomposed.unicodeScalars.filter { $0.properties.generalCategory != .nonspacingMark }
            }
            return lower ? lowercase(scalars(out)) : scalars(out)
        }
    }

    /// Cc, Cf and Co; unlike the Unicode definition, not unassigned code points (Hugging Face keeps those).
    static func isControl(_ s: Unicode.Scalar) -> Bool {
        if s == "\t" || s == "\n" || s == "\r" { return false }
        switch s.properties.generalCategory {
        case .control, .format, .privateUse: return true
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
