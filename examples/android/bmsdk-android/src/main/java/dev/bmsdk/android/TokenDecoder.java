package dev.bmsdk.android;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * A tokenizer.json "decoder": token strings back to text. `decode` applies the decoders in order as Hugging Face
 * does (ByteLevel, Metaspace, Replace with a string pattern, ByteFallback, Fuse, Strip, Sequence). `stream` turns
 * tokens into bytes one at a time (byte-level characters, `<0xNN>` byte tokens, `▁` for a space) and emits only
 * complete UTF-8 characters; it adds up to `decode` except where a run of `<0xNN>` tokens is invalid UTF-8 (Hugging
 * Face then writes one U+FFFD per byte, the stream one per maximal invalid subpart).
 */
public final class TokenDecoder {
    private final List<UnaryOperator<List<String>>> chain = new ArrayList<>();
    private final List<String[]> replacements = new ArrayList<>();
    private boolean byteLevel;
    private boolean byteFallback;
    private int stripLeading;
    private char stripChar = ' ';

    public TokenDecoder(Object decoderJson) {
        if (decoderJson != null) {
            add(Json.object(decoderJson));
        }
    }

    private void add(Map<String, Object> d) {
        String type = (String) d.get("type");
        switch (type) {
            case "Sequence":
                for (Object inner : Json.array(d.get("decoders"))) {
                    add(Json.object(inner));
                }
                return;
            case "ByteLevel":
                byteLevel = true;
                chain.add(TokenDecoder::byteLevel);
                return;
            case "ByteFallback":
                byteFallback = true;
                chain.add(TokenDecoder::byteFallback);
                return;
            case "WordPiece": {  // "##" pieces glued to the previous token, others after a space; cleanup
                String prefix = d.get("prefix") == null ? "##" : (String) d.get("prefix");
                boolean cleanup = !Boolean.FALSE.equals(d.get("cleanup"));
                chain.add(tokens -> {
                    List<String> out = new ArrayList<>();
                    for (int i = 0; i < tokens.size(); i++) {
                        String t = tokens.get(i);
                        if (i != 0) {
                            t = t.startsWith(prefix) ? t.substring(prefix.length()) : " " + t;
                        }
                        out.add(cleanup ? cleanup(t) : t);
                    }
                    return out;
                });
                return;
            }
            case "Fuse":
                chain.add(tokens -> List.of(String.join("", tokens)));
                return;
            case "Replace": {
                Map<String, Object> pattern = Json.object(d.get("pattern"));
                if (!pattern.containsKey("String")) {
                    throw new IllegalArgumentException("decoder Replace: only a String pattern is supported");
                }
                String from = (String) pattern.get("String");
                String to = (String) d.get("content");
                replacements.add(new String[] {from, to});
                chain.add(tokens -> map(tokens, t -> t.replace(from, to)));
                return;
            }
            case "Strip": {
                String content = (String) d.get("content");
                int start = (int) Json.number(d.get("start"));
                int stop = (int) Json.number(d.get("stop"));
                if (stop != 0 || content.length() != 1) {
                    throw new IllegalArgumentException("decoder Strip: only stripping one character at the start is supported");
                }
                stripChar = content.charAt(0);
                stripLeading += start;
                chain.add(tokens -> map(tokens, t -> stripStart(t, content.charAt(0), start)));
                return;
            }
            case "Metaspace": {
                String replacement = (String) d.get("replacement");
                boolean prepend = d.containsKey("prepend_scheme") ? !"never".equals(d.get("prepend_scheme"))
                        : !Boolean.FALSE.equals(d.get("add_prefix_space"));
                replacements.add(new String[] {replacement, " "});
                stripLeading += prepend ? 1 : 0;
                chain.add(tokens -> {
                    List<String> out = map(tokens, t -> t.replace(replacement, " "));
                    if (prepend && !out.isEmpty()) {
                        out.set(0, stripStart(out.get(0), ' ', 1));
                    }
                    return out;
                });
                return;
            }
            default:
                throw new IllegalArgumentException("unsupported tokenizer decoder " + type);
        }
    }

    /** Hugging Face's clean_up_tokenization: no space before punctuation and English contractions. */
    static String cleanup(String s) {
        return s.replace(" .", ".").replace(" ?", "?").replace(" !", "!").replace(" ,", ",").replace(" ' ", "'")
                .replace(" n't", "n't").replace(" 'm", "'m").replace(" do not", " don't").replace(" 's", "'s")
                .replace(" 've", "'ve").replace(" 're", "'re");
    }

    /** The text of `tokens` (special tokens already left out), as Hugging Face's decode. */
    public String decode(List<String> tokens) {
        List<String> out = new ArrayList<>(tokens);
        for (UnaryOperator<List<String>> step : chain) {
            out = step.apply(out);
        }
        return String.join("", out);
    }

    public Stream stream() {
        return new Stream();
    }

    /** Streamed decoding: feed one token at a time, get the text it completes (possibly empty). */
    public final class Stream {
        private final Utf8Decoder utf8 = new Utf8Decoder();
        private int toStrip = stripLeading;

        public String feed(String token) {
            return strip(utf8.feed(bytes(token)));
        }

        public String finish() {
            return strip(utf8.finish());
        }

        private String strip(String text) {
            int i = 0;
            while (toStrip > 0 && i < text.length() && text.charAt(i) == stripChar) {
                i++;
                toStrip--;
            }
            if (i < text.length()) {
                toStrip = 0;
            }
            return text.substring(i);
        }
    }

    private byte[] bytes(String token) {
        if (byteFallback && isByteToken(token)) {
            return new byte[] {(byte) Integer.parseInt(token.substring(3, 5), 16)};
        }
        for (String[] r : replacements) {
            token = token.replace(r[0], r[1]);
        }
        byte[] raw = byteLevel ? ByteLevel.decode(token) : null;
        return raw != null ? raw : token.getBytes(StandardCharsets.UTF_8);
    }

    private static boolean isByteToken(String t) {
        return t.length() == 6 && t.startsWith("<0x") && t.endsWith(">")
                && Character.digit(t.charAt(3), 16) >= 0 && Character.digit(t.charAt(4), 16) >= 0;
    }

    private static List<String> byteLevel(List<String> tokens) {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        for (String t : tokens) {
            byte[] b = ByteLevel.decode(t);
            if (b == null) {
                b = t.getBytes(StandardCharsets.UTF_8);
            }
            bytes.write(b, 0, b.length);
        }
        return List.of(Utf8Decoder.decode(bytes.toByteArray()));
    }

    /** Runs of `<0xNN>` tokens become their UTF-8 text, or one U+FFFD per byte when the run is not valid UTF-8. */
    private static List<String> byteFallback(List<String> tokens) {
        List<String> out = new ArrayList<>();
        java.io.ByteArrayOutputStream run = new java.io.ByteArrayOutputStream();
        for (int i = 0; i <= tokens.size(); i++) {
            String t = i < tokens.size() ? tokens.get(i) : null;
            if (t != null && isByteToken(t)) {
                run.write(Integer.parseInt(t.substring(3, 5), 16));
                continue;
            }
            if (run.size() > 0) {
                byte[] b = run.toByteArray();
                String text = Utf8Decoder.decode(b);
                boolean valid = java.util.Arrays.equals(text.getBytes(StandardCharsets.UTF_8), b);
                out.add(valid ? text : "\uFFFD".repeat(b.length));
                run.reset();
            }
            if (t != null) {
                out.add(t);
            }
        }
        return out;
    }

    private static List<String> map(List<String> tokens, UnaryOperator<String> f) {
        List<String> out = new ArrayList<>(tokens.size());
        for (String t : tokens) {
            out.add(f.apply(t));
        }
        return out;
    }

    private static String stripStart(String t, char c, int count) {
        int i = 0;
        while (i < count && i < t.length() && t.charAt(i) == c) {
            i++;
        }
        return t.substring(i);
    }
}
