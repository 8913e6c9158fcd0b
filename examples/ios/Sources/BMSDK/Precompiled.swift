import Foundation

/// SentencePiece's normalization rules (`precompiled_charsmap`, e.g. nmt_nfkc), read and applied exactly as Hugging
/// Face `tokenizers` does. The blob is a little-endian u32 trie size, a darts-clone double-array trie of that many
/// bytes over UTF-8 keys, then NUL-terminated replacement strings the trie's values point into. The text is taken
/// one grapheme cluster (Swift's Character) at a time: a cluster shorter than 6 UTF-8 bytes is replaced whole by the
/// rule of its shortest matching prefix, if any; otherwise each scalar is replaced by its own rule or kept.
struct Precompiled {
    let trie: [UInt32]
    let normalized: [UInt8]

    init(base64: String) throws {
        guard let blob = Data(base64Encoded: base64).map(Array.init) else {
            throw BMSDKError.tokenizer("Precompiled normalizer: precompiled_charsmap is not base64")
        }
        func u32(_ at: Int) -> UInt32 {
            UInt32(blob[at]) | UInt32(blob[at + 1]) << 8 | UInt32(blob[at + 2]) << 16 | UInt32(blob[at + 3]) << 24
        }
        guard blob.count >= 4 else { throw BMSDKError.tokenizer("Precompiled normalizer: precompiled_charsmap is truncated") }
        let size = Int(u32(0))
        guard size >= 4, size % 4 == 0, 4 + size <= blob.count else {
            throw BMSDKError.tokenizer("Precompiled normalizer: bad trie size \(size)")
        }
        trie = stride(from: 4, to: 4 + size, by: 4).map(u32)
        normalized = Array(blob[(4 + size)...])
    }

    func normalize(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for grapheme in text {
            let scalars = grapheme.unicodeScalars
            if String(grapheme).utf8.count < 6, let rule = transform(Array(String(grapheme).utf8)) {
                out.append(contentsOf: rule.unicodeScalars)
                continue
            }
            for s in scalars {
                if let rule = transform(Array(String(s).utf8)) { out.append(contentsOf: rule.unicodeScalars) } else { out.append(s) }
            }
        }
        return String(out)
    }

    /// The replacement of the shortest key that prefixes `key`, or nil when none does (or the blob is inconsistent).
    func transform(_ key: [UInt8]) -> String? {
        guard let start = firstPrefixValue(key), start <= normalized.count else { return nil }
        let end = normalized[start...].firstIndex(of: 0) ?? normalized.count
        return String(decoding: normalized[start..<end], as: UTF8.self)
    }

    /// darts-clone's common prefix search, stopped at the first (shortest) match.
    private func firstPrefixValue(_ key: [UInt8]) -> Int? {
        func unit(_ i: Int) -> UInt32? { i >= 0 && i < trie.count ? trie[i] : nil }
        func offset(_ u: UInt32) -> Int { Int((u >> 10) << ((u & (1 << 9)) >> 6)) }
        guard let root = unit(0) else { return nil }
        var node = offset(root)
        for c in key {
            if c == 0 { return nil }
            node ^= Int(c)
            guard let u = unit(node), u & 0x8000_00FF == UInt32(c) else { return nil }
            node ^= offset(u)
            if (u >> 8) & 1 == 1 { return unit(node).map { Int($0 & 0x7FFF_FFFF) } }
        }
        return nil
    }
}
