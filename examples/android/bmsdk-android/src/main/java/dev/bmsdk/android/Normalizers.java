package dev.bmsdk.android;

import java.text.Normalizer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A tokenizer.json `normalizer` as one function, applied as Hugging Face `tokenizers` applies it: Sequence, NFC,
 * NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, StripAccents, Precompiled (SentencePiece's charsmap, exact)
 * and BertNormalizer. Any other type is refused when the tokenizer is read, never skipped.
 *
 * Character properties come from the JVM's Unicode tables (Java 17: Unicode 13; Rust's crates: Unicode 15-16), so
 * NFKC/NFKD, lowercasing and categories may differ on code points added to Unicode since.
 */
final class Normalizers {
    private Normalizers() {
    }

    /** The normalizer of a tokenizer.json (null: none). */
    static UnaryOperator<String> read(Object json) {
        if (json == null) {
            return s -> s;
        }
        Map<String, Object> n = Json.object(json);
        String type = (String) n.get("type");
        switch (type) {
            case "Sequence": {
                List<UnaryOperator<String>> steps = new ArrayList<>();
                for (Object inner : Json.array(n.get("normalizers"))) {
                    steps.add(read(inner));
                }
                return s -> {
                    for (UnaryOperator<String> step : steps) {
                        s = step.apply(s);
                    }
                    return s;
                };
            }
            case "NFC": return s -> Normalizer.normalize(s, Normalizer.Form.NFC);
            case "NFD": return s -> Normalizer.normalize(s, Normalizer.Form.NFD);
            case "NFKC": return s -> Normalizer.normalize(s, Normalizer.Form.NFKC);
            case "NFKD": return s -> Normalizer.normalize(s, Normalizer.Form.NFKD);
            case "Lowercase": return Normalizers::lowercase;
            case "StripAccents": return Normalizers::stripMarks;
            case "Strip": return strip(!Boolean.FALSE.equals(n.get("strip_left")), !Boolean.FALSE.equals(n.get("strip_right")));
            case "Prepend": {
                String p = (String) n.get("prepend");
                return s -> s.isEmpty() ? s : p + s;
            }
            case "Replace": return replace(Json.object(n.get("pattern")), (String) n.get("content"));
            case "Precompiled": return new Precompiled((String) n.get("precompiled_charsmap"))::normalize;
            case "BertNormalizer": return bert(n);
            default:
                throw new IllegalArgumentException("unsupported tokenizer normalizer " + type);
        }
    }

    private static UnaryOperator<String> replace(Map<String, Object> pattern, String content) {
        if (pattern.containsKey("String")) {
            String from = (String) pattern.get("String");
            return s -> s.replace(from, content);
        }
        Pattern re = Pattern.compile((String) pattern.get("Regex"), Pattern.UNICODE_CHARACTER_CLASS);
        return s -> re.matcher(s).replaceAll(Matcher.quoteReplacement(content));
    }

    private static UnaryOperator<String> strip(boolean left, boolean right) {
        return s -> {
            int[] cps = s.codePoints().toArray();
            int begin = 0;
            int end = cps.length;
            while (left && begin < end && isWhitespace(cps[begin])) {
                begin++;
            }
            while (right && end > begin && isWhitespace(cps[end - 1])) {
                end--;
            }
            return new String(cps, begin, end - begin);
        };
    }

    /** Rust's char::is_whitespace (the Unicode White_Space property), which Hugging Face uses for splitting. */
    static boolean isWhitespace(int cp) {
        return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680
                || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F
                || cp == 0x3000;
    }

    /**
     * Each code point lowercased on its own, as Rust's char::to_lowercase: no context (a final Σ stays σ, where
     * String.toLowerCase would write ς), and İ becomes i + U+0307 (the one unconditional multi-character mapping).
     */
    static String lowercase(String s) {
        StringBuilder out = new StringBuilder(s.length());
        s.codePoints().forEach(cp -> {
            if (cp == 0x130) {
                out.append("i\u0307");
            } else {
                out.appendCodePoint(Character.toLowerCase(cp));
            }
        });
        return out.toString();
    }

    /** Drop combining marks (Mn, Mc, Me), as the StripAccents normalizer. */
    static String stripMarks(String s) {
        StringBuilder out = new StringBuilder(s.length());
        s.codePoints().forEach(cp -> {
            int type = Character.getType(cp);
            if (type != Character.NON_SPACING_MARK && type != Character.COMBINING_SPACING_MARK
                    && type != Character.ENCLOSING_MARK) {
                out.appendCodePoint(cp);
            }
        });
        return out.toString();
    }

    /**
     * BertNormalizer: clean text (drop NUL, U+FFFD and control characters; whitespace becomes a space), pad CJK
     * ideographs with spaces, strip accents (NFD, then drop non-spacing marks), lowercase.
     */
    private static UnaryOperator<String> bert(Map<String, Object> n) {
        boolean cleanText = !Boolean.FALSE.equals(n.get("clean_text"));
        boolean chineseChars = !Boolean.FALSE.equals(n.get("handle_chinese_chars"));
        boolean lowercase = !Boolean.FALSE.equals(n.get("lowercase"));
        boolean stripAccents = n.get("strip_accents") == null ? lowercase : Boolean.TRUE.equals(n.get("strip_accents"));
        return text -> {
            StringBuilder out = new StringBuilder();
            text.codePoints().forEach(cp -> {
                if (cleanText) {
                    if (cp == 0 || cp == 0xFFFD || isControl(cp)) {
                        return;
                    }
                    if (isWhitespace(cp)) {
                        out.append(' ');
                        return;
                    }
                }
                if (chineseChars && isChinese(cp)) {
                    out.append(' ').appendCodePoint(cp).append(' ');
                    return;
                }
                out.appendCodePoint(cp);
            });
            String s = out.toString();
            if (stripAccents) {
                StringBuilder kept = new StringBuilder();
                Normalizer.normalize(s, Normalizer.Form.NFD).codePoints()
                        .filter(cp -> Character.getType(cp) != Character.NON_SPACING_MARK)
                        .forEach(kept::appendCodePoint);
                s = kept.toString();
            }
            return lowercase ? lowercase(s) : s;
        };
    }

    /** Cc, Cf and Co; unlike the Unicode definition, not unassigned code points (Hugging Face keeps those). */
    static boolean isControl(int cp) {
        if (cp == '\t' || cp == '\n' || cp == '\r') {
            return false;
        }
        int type = Character.getType(cp);
        return type == Character.CONTROL || type == Character.FORMAT || type == Character.PRIVATE_USE;
    }

    static boolean isChinese(int cp) {
        return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF)
                || (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF)
                || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
    }
}
