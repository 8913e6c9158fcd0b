import Foundation

/// GPT-2's bytes-to-unicode table: byte-level BPE spells every byte as one printable character (the printable
/// Latin-1 bytes as themselves, the others as U+0100 onwards), so that vocabularies hold no raw bytes.
enum ByteLevel {
    static let byteToScalar: [Unicode.Scalar] = {
        var next: UInt32 = 256
        return (0..<256).map { b -> Unicode.Scalar in
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable { return Unicode.Scalar(UInt32(b))! }
            defer { next += 1 }
            return Unicode.Scalar(next)!
        }
    }()
    static let scalarToByte: [Unicode.Scalar: UInt8] = {
        var map: [Unicode.Scalar: UInt8] = [:]
        for (b, s) in byteToScalar.enumerated() { map[s] = UInt8(b) }
        return map
    }()

    /// The UTF-8 bytes of `text`, one table character each.
    static func encode(_ text: String) -> [Unicode.Scalar] {
        text.utf8.map { byteToScalar[Int($0)] }
    }

    /// The bytes a token spells; nil when a character is not in the table (then the token is taken as text).
    static func decode(_ token: [Unicode.Scalar]) -> [UInt8]? {
        var out: [UInt8] = []
        for s in token {
            guard let b = scalarToByte[s] else { return nil }
            out.append(b)
        }
        return out
    }
}

/// Incremental UTF-8 decoding for streamed tokens: the text of every complete character fed so far, holding the
/// bytes of one still incomplete. Invalid bytes become U+FFFD, one per maximal invalid subpart as Rust's
/// `String::from_utf8_lossy` (Hugging Face's decoders) does, so streamed chunks add up to decoding all at once.
public struct UTF8Stream {
    private var held: [UInt8] = []

    public init() {}

    public mutating func feed(_ bytes: [UInt8]) -> String { held += bytes; return drain(last: false) }

    /// The rest: held bytes of an incomplete character become one U+FFFD.
    public mutating func finish() -> String { drain(last: true) }

    public static func decode(_ bytes: [UInt8]) -> String {
        var s = UTF8Stream()
        return s.feed(bytes) + s.finish()
    }

    private mutating func drain(last: Bool) -> String {
        let b = held
        var out = String.UnicodeScalarView()
        var i = 0
        while i < b.count {
            let lead = b[i]
            let need: Int
            switch lead {
            case 0x00...0x7F: need = 0
            case 0xC2...0xDF: need = 1
            case 0xE0...0xEF: need = 2
            case 0xF0...0xF4: need = 3
            default: need = -1
            }
            if need < 0 { out.append("\u{FFFD}"); i += 1; continue }
            var k = 1
            while k <= need && i + k < b.count && Self.continuation(lead, k, b[i + k]) { k += 1 }
            if k > need {
                var cp = need == 0 ? UInt32(lead) : UInt32(lead) & (0x3F >> UInt32(need))
                for j in stride(from: 1, through: need, by: 1) { cp = (cp << 6) | UInt32(b[i + j] & 0x3F) }
                out.append(Unicode.Scalar(cp)!)
                i += k
            } else if i + k == b.count && !last {
                break  // incomplete so far: wait for more bytes
            } else {
                out.append("\u{FFFD}")  // the maximal subpart: the lead and the valid continuations after it
                i += k
            }
        }
        held = Array(b[i...])
        return String(out)
    }

    /// Whether `b` may be continuation byte number `k` of a sequence starting with `lead` (Unicode table 3-7).
    private static func continuation(_ lead: UInt8, _ k: Int, _ b: UInt8) -> Bool {
        if k == 1 {
            switch lead {
            case 0xE0: return (0xA0...0xBF).contains(b)
            case 0xED: return (0x80...0x9F).contains(b)
            case 0xF0: return (0x90...0xBF).contains(b)
            case 0xF4: return (0x80...0x8F).contains(b)
            default: break
            }
        }
        return (0x80...0xBF).contains(b)
    }
}

/// A tokenizer.json "decoder": token strings back to text. `decode` applies the decoders in order as Hugging Face
/// does (ByteLevel, Metaspace, Replace with a string pattern, ByteFallback, Fuse, Strip, Sequence). `stream()`
/// turns tokens into bytes one at a time and emits only complete UTF-8 characters; it adds up to `decode` except
/// where a run of `<0xNN>` tokens is invalid UTF-8 (Hugging Face then writes one U+FFFD per byte, the stream one
/// per maximal invalid subpart).
public struct TokenDecoder {
    typealias Step = ([String]) -> [String]
    private var chain: [Step] = []
    private var replacements: [(String, String)] = []
    private var byteLevel = false
    private var byteFallback = false
    private var stripLeading = 0
    private var stripScalar: Unicode.Scalar = " "

    init(_ json: Any?) throws {
        if let d = json as? [String: Any] { try add(d) }
    }

    private mutating func add(_ d: [String: Any]) throws {
        let type = d["type"] as? String ?? "?"
        switch type {
        case "Sequence":
            for inner in d["decoders"] as? [[String: Any]] ?? [] { try add(inner) }
        case "ByteLevel":
            byteLevel = true
            chain.append { [UTF8Stream.decode($0.flatMap { t in ByteLevel.decode(Array(t.unicodeScalars)) ?? Array(t.utf8) })] }
        case "ByteFallback":
            byteFallback = true
            chain.append(Self.byteFallback)
        case "WordPiece":  // "##" pieces glued to the previous token, others after a space; cleanup
            let prefix = d["prefix"] as? String ?? "##"
            let cleanup = d["cleanup"] as? Bool ?? true
            chain.append { tokens in
                tokens.enumerated().map { i, t in
                    var s = t
                    if i != 0 { s = t.hasPrefix(prefix) ? String(t.unicodeScalars.dropFirst(prefix.unicodeScalars.count)) : " " + t }
                    return cleanup ? Self.cleanup(s) : s
                }
            }
        case "Fuse":
            chain.append { [$0.joined()] }
        case "Replace":
            guard let from = (d["pattern"] as? [String: Any])?["String"] as? String, let to = d["content"] as? String else {
                throw BMSDKError.tokenizer("decoder Replace: only a String pattern is supported")
            }
            replacements.append((from, to))
            chain.append { $0.map { Self.replace($0, from, to) } }
        case "Strip":
            let content = Array((d["content"] as? String ?? " ").unicodeScalars)
            let start = d["start"] as? Int ?? 0
            guard (d["stop"] as? Int ?? 0) == 0, content.count == 1 else {
                throw BMSDKError.tokenizer("decoder Strip: only stripping one character at the start is supported")
            }
            stripScalar = content[0]
            stripLeading += start
            chain.append { $0.map { Self.stripStart($0, content[0], start) } }
        case "Metaspace":
            let replacement = d["replacement"] as? String ?? "▁"
            let prepend = d["prepend_scheme"].map { ($0 as? String) != "never" } ?? ((d["add_prefix_space"] as? Bool) ?? true)
            replacements.append((replacement, " "))
            stripLeading += prepend ? 1 : 0
            chain.append { tokens in
                var out = tokens.map { Self.replace($0, replacement, " ") }
                if prepend && !out.isEmpty { out[0] = Self.stripStart(out[0], " ", 1) }
                return out
            }
        default:
            throw BMSDKError.tokenizer("unsupported tokenizer decoder \(type)")
        }
    }

    /// Hugging Face's clean_up_tokenization: no space before punctuation and English contractions.
    static func cleanup(_ s: String) -> String {
        var out = s
        for (a, b) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
                       (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")] {
            out = replace(out, a, b)
        }
        return out
    }

    /// The text of `tokens` (special tokens already left out), as Hugging Face's decode.
    public func decode(_ tokens: [String]) -> String {
        chain.reduce(tokens) { $1($0) }.joined()
    }

    public func stream() -> Stream { Stream(decoder: self) }

    /// Streamed decoding: feed one token at a time, get the text it completes (possibly empty).
    public struct Stream {
        let decoder: TokenDecoder
        private var utf8 = UTF8Stream()
        private var toStrip: Int

        init(decoder: TokenDecoder) {
            self.decoder = decoder
            toStrip = decoder.stripLeading
        }

        public mutating func feed(_ token: String) -> String { strip(utf8.feed(decoder.bytes(token))) }

        public mutating func finish() -> String { strip(utf8.finish()) }

        private mutating func strip(_ text: String) -> String {
            var scalars = Substring(text).unicodeScalars
            while toStrip > 0, let first = scalars.first, first == decoder.stripScalar {
                scalars.removeFirst()
                toStrip -= 1
            }
            if !scalars.isEmpty { toStrip = 0 }
            return String(scalars)
        }
    }

    func bytes(_ token: String) -> [UInt8] {
        if byteFallback, let b = Self.byteToken(token) { return [b] }
        var t = token
        for (from, to) in replacements { t = Self.replace(t, from, to) }
        if byteLevel, let raw = ByteLevel.decode(Array(t.unicodeScalars)) { return raw }
        return Array(t.utf8)
    }

    static func byteToken(_ t: String) -> UInt8? {
        let s = Array(t.unicodeScalars)
        guard s.count == 6, t.hasPrefix("<0x"), s[5] == ">" else { return nil }
        return UInt8(String(String.UnicodeScalarView(s[3..<5])), radix: 16)
    }

    /// Runs of `<0xNN>` tokens become their UTF-8 text, or one U+FFFD per byte when the run is not valid UTF-8.
    private static func byteFallback(_ tokens: [String]) -> [String] {
        var out: [String] = []
        var run: [UInt8] = []
        func flush() {
            guard !run.isEmpty else { return }
            let text = UTF8Stream.decode(run)
            out.append(Array(text.utf8) == run ? text : String(repeating: "\u{FFFD}", count: run.count))
            run = []
        }
        for t in tokens {
            if let b = byteToken(t) { run.append(b); continue }
            flush()
            out.append(t)
        }
        flush()
        return out
    }

    /// Literal replacement on Unicode scalars (String's own comparison would match canonically equivalent text).
    static func replace(_ s: String, _ from: String, _ to: String) -> String {
        let f = Array(from.unicodeScalars)
        let chars = Array(s.unicodeScalars)
        guard !f.isEmpty, chars.count >= f.count else { return s }
        var out = String.UnicodeScalarView()
        var i = 0
        while i < chars.count {
            if i + f.count <= chars.count && Array(chars[i..<i + f.count]) == f {
                out.append(contentsOf: to.unicodeScalars)
                i += f.count
            } else {
                out.append(chars[i])
                i += 1
            }
        }
        return String(out)
    }

    private static func stripStart(_ t: String, _ c: Unicode.Scalar, _ count: Int) -> String {
        var scalars = Substring(t).unicodeScalars
        var n = 0
        while n < count, scalars.first == c { scalars.removeFirst(); n += 1 }
        return String(scalars)
    }
}
