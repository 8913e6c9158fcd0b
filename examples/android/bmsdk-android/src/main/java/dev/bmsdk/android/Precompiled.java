package dev.bmsdk.android;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * SentencePiece's normalization rules (`precompiled_charsmap`, e.g. nmt_nfkc), read and applied exactly as Hugging
 * Face `tokenizers` does. The blob is a little-endian u32 trie size, a darts-clone double-array trie of that many
 * bytes over UTF-8 keys, then NUL-terminated replacement strings the trie's values point into. The text is taken
 * one grapheme cluster at a time: a cluster shorter than 6 UTF-8 bytes is replaced whole by the rule of its
 * shortest matching prefix, if any; otherwise each code point is replaced by its own rule or kept.
 *
 * Grapheme clusters come from java.util.regex's \X (Unicode 13 on Java 17, Rust's unicode-segmentation is newer):
 * clusters only matter here when shorter than 6 bytes (CRLF, a letter with one combining mark, ...), which both agree on.
 */
final class Precompiled {
    private static final Pattern GRAPHEME = Pattern.compile("\\X");

    private final int[] trie;
    private final byte[] normalized;

    Precompiled(String base64) {
        byte[] blob;
        try {
            blob = Base64.getDecoder().decode(base64);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("Precompiled normalizer: precompiled_charsmap is not base64");
        }
        if (blob.length < 4) {
            throw new IllegalArgumentException("Precompiled normalizer: precompiled_charsmap is truncated");
        }
        ByteBuffer buf = ByteBuffer.wrap(blob).order(ByteOrder.LITTLE_ENDIAN);
        long trieBytes = buf.getInt() & 0xFFFFFFFFL;
        if (trieBytes % 4 != 0 || trieBytes < 4 || 4 + trieBytes > blob.length) {
            throw new IllegalArgumentException("Precompiled normalizer: bad trie size " + trieBytes);
        }
        trie = new int[(int) (trieBytes / 4)];
        for (int i = 0; i < trie.length; i++) {
            trie[i] = buf.getInt();
        }
        normalized = new byte[blob.length - 4 - (int) trieBytes];
        buf.get(normalized);
    }

    String normalize(String text) {
        StringBuilder out = new StringBuilder(text.length());
        Matcher m = GRAPHEME.matcher(text);
        while (m.find()) {
            String grapheme = m.group();
            String whole = grapheme.getBytes(StandardCharsets.UTF_8).length < 6 ? transform(grapheme) : null;
            if (whole != null) {
                out.append(whole);
                continue;
            }
            for (int i = 0; i < grapheme.length(); ) {
                int cp = grapheme.codePointAt(i);
                String c = new String(Character.toChars(cp));
                String rule = transform(c);
                out.append(rule != null ? rule : c);
                i += c.length();
            }
        }
        return out.toString();
    }

    /** The replacement of the shortest key that prefixes `chunk`, or null when none does. */
    private String transform(String chunk) {
        int value = firstPrefixValue(chunk.getBytes(StandardCharsets.UTF_8));
        if (value < 0) {
            return null;
        }
        if (value > normalized.length) {
            throw new IllegalArgumentException("Precompiled normalizer: a rule points outside the charsmap");
        }
        int end = value;
        while (end < normalized.length && normalized[end] != 0) {
            end++;
        }
        return new String(normalized, value, end - value, StandardCharsets.UTF_8);
    }

    /** darts-clone's common prefix search, stopped at the first (shortest) match; -1 if none. */
    private int firstPrefixValue(byte[] key) {
        int node = offset(unit(0));
        for (byte b : key) {
            int c = b & 0xFF;
            if (c == 0) {
                return -1;
            }
            node ^= c;
            int unit = unit(node);
            if ((unit & 0x800000FF) != c) {
                return -1;
            }
            node ^= offset(unit);
            if (((unit >>> 8) & 1) == 1) {
                return unit(node) & 0x7FFFFFFF;
            }
        }
        return -1;
    }

    private int unit(int index) {
        if (index < 0 || index >= trie.length) {
            throw new IllegalArgumentException("Precompiled normalizer: the trie points outside itself");
        }
        return trie[index];
    }

    private static int offset(int unit) {
        return (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
    }
}
