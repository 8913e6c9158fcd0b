package dev.bmsdk.android;

import java.io.ByteArrayOutputStream;

/**
 * Incremental UTF-8 decoding for streamed tokens: returns the text of every complete character fed so far and holds
 * the bytes of a character still incomplete. Invalid bytes become U+FFFD, one per maximal invalid subpart as
 * Rust's String::from_utf8_lossy (Hugging Face's decoders) does, so the streamed chunks add up to the lossy
 * decoding of all bytes at once.
 */
public final class Utf8Decoder {
    private final ByteArrayOutputStream held = new ByteArrayOutputStream();

    /** Decode `bytes` after the held ones; a trailing incomplete character is held for the next call. */
    public String feed(byte[] bytes) {
        held.write(bytes, 0, bytes.length);
        return drain(false);
    }

    /** The rest: held bytes of an incomplete character become one U+FFFD. */
    public String finish() {
        return drain(true);
    }

    /** All of `bytes` at once, lossy. */
    public static String decode(byte[] bytes) {
        Utf8Decoder d = new Utf8Decoder();
        return d.feed(bytes) + d.finish();
    }

    private String drain(boolean last) {
        byte[] b = held.toByteArray();
        StringBuilder out = new StringBuilder();
        int i = 0;
        while (i < b.length) {
            int lead = b[i] & 0xFF;
            int need = lead < 0x80 ? 0 : lead >= 0xC2 && lead <= 0xDF ? 1 : lead >= 0xE0 && lead <= 0xEF ? 2
                    : lead >= 0xF0 && lead <= 0xF4 ? 3 : -1;
            if (need < 0) {
                out.append('\uFFFD');
                i++;
                continue;
            }
            int k = 1;
            while (k <= need && i + k < b.length && continuation(lead, k, b[i + k] & 0xFF)) {
                k++;
            }
            if (k > need) {
                int cp = need == 0 ? lead : lead & (0x3F >> need);
                for (int j = 1; j <= need; j++) {
                    cp = (cp << 6) | (b[i + j] & 0x3F);
                }
                out.appendCodePoint(cp);
                i += k;
            } else if (i + k == b.length && !last) {
                break;  // incomplete so far: wait for more bytes
            } else {
                out.append('\uFFFD');  // the maximal subpart: the lead and the valid continuations after it
                i += k;
            }
        }
        held.reset();
        held.write(b, i, b.length - i);
        return out.toString();
    }

    /** Whether `b` may be continuation byte number `k` of a sequence starting with `lead` (Unicode table 3-7). */
    private static boolean continuation(int lead, int k, int b) {
        if (k == 1) {
            switch (lead) {
                case 0xE0: return b >= 0xA0 && b <= 0xBF;
                case 0xED: return b >= 0x80 && b <= 0x9F;
                case 0xF0: return b >= 0x90 && b <= 0xBF;
                case 0xF4: return b >= 0x80 && b <= 0x8F;
                default: break;
            }
        }
        return b >= 0x80 && b <= 0xBF;
    }
}
