package dev.bmsdk.android;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A tokenizer.json `pre_tokenizer` as a list of steps, each splitting every piece further: Sequence, ByteLevel
 * (GPT-2's regex and byte alphabet), Split (Isolated or Removed), Metaspace, WhitespaceSplit and BertPreTokenizer.
 * Any other type is refused when the tokenizer is read.
 *
 * Regexes run on java.util.regex with Unicode character classes, not on Oniguruma as in Hugging Face: they agree on
 * the GPT-2 and Llama-3 patterns for ordinary text; rare whitespace and category edge cases may split differently.
 * Metaspace's prepend_scheme "first" prepends to the first piece of the text (Hugging Face: to a piece at offset 0
 * of the original text, which differs only when the text starts with whitespace that an earlier step removed).
 */
final class PreTokenizers {
    private static final String GPT2_SPLIT =
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

    /** One pre-tokenizer step: a piece of text (and whether it starts the input) into pieces. */
    interface Step {
        List<String> apply(String piece, boolean first);
    }

    /** ByteLevel: an optional prefix space, GPT-2's regex split, then each part spelled in the byte alphabet. */
    static final class ByteLevelStep implements Step {
        private final boolean prefixSpace;
        private final Pattern re;

        ByteLevelStep(boolean prefixSpace, Pattern re) {
            this.prefixSpace = prefixSpace;
            this.re = re;
        }

        /** The parts of `piece` before byte-level spelling (the first with the prefix space when one is added). */
        boolean prepends(String piece) {
            return prefixSpace && !piece.isEmpty() && !piece.startsWith(" ");
        }

        List<String> parts(String piece) {
            String s = prepends(piece) ? " " + piece : piece;
            return re == null ? List.of(s) : split(s, re, "Isolated");
        }

        @Override
        public List<String> apply(String piece, boolean first) {
            List<String> out = new ArrayList<>();
            for (String part : parts(piece)) {
                out.add(ByteLevel.encode(part));
            }
            return out;
        }
    }

    private PreTokenizers() {
    }

    /** The steps of a tokenizer.json pre_tokenizer, in order (null: none). */
    static List<Step> read(Object json) {
        List<Step> steps = new ArrayList<>();
        if (json != null) {
            add(Json.object(json), steps);
        }
        return steps;
    }

    private static void add(Map<String, Object> p, List<Step> steps) {
        String type = (String) p.get("type");
        switch (type) {
            case "Sequence":
                for (Object inner : Json.array(p.get("pretokenizers"))) {
                    add(Json.object(inner), steps);
                }
                break;
            case "ByteLevel":
                steps.add(new ByteLevelStep(Boolean.TRUE.equals(p.get("add_prefix_space")),
                        Boolean.FALSE.equals(p.get("use_regex")) ? null : regex(GPT2_SPLIT)));
                break;
            case "Split": {
                Map<String, Object> pattern = Json.object(p.get("pattern"));
                Pattern re = pattern.containsKey("Regex") ? regex((String) pattern.get("Regex"))
                        : Pattern.compile(Pattern.quote((String) pattern.get("String")));
                String behavior = (String) p.get("behavior");
                if (Boolean.TRUE.equals(p.get("invert")) || !("Isolated".equals(behavior) || "Removed".equals(behavior))) {
                    throw new IllegalArgumentException("pre-tokenizer Split: only Isolated or Removed, not inverted");
                }
                steps.add((piece, first) -> split(piece, re, behavior));
                break;
            }
            case "Metaspace":
                steps.add(metaspace(p));
                break;
            case "WhitespaceSplit":
                steps.add((piece, first) -> splitOn(piece, false, Normalizers::isWhitespace));
                break;
            case "BertPreTokenizer":
                steps.add((piece, first) -> splitOn(piece, true, Normalizers::isWhitespace));
                break;
            default:
                throw new IllegalArgumentException("unsupported tokenizer pre-tokenizer " + type);
        }
    }

    /** Spaces become `replacement` (▁), prepended per prepend_scheme, then a split before each one. */
    private static Step metaspace(Map<String, Object> p) {
        String replacement = (String) p.get("replacement");
        String scheme = p.containsKey("prepend_scheme") ? (String) p.get("prepend_scheme")
                : Boolean.FALSE.equals(p.get("add_prefix_space")) ? "never" : "always";
        boolean splits = !Boolean.FALSE.equals(p.get("split"));
        return (piece, first) -> {
            String s = piece.replace(" ", replacement);
            boolean prepend = "always".equals(scheme) || ("first".equals(scheme) && first);
            if (prepend && !s.isEmpty() && !s.startsWith(replacement)) {
                s = replacement + s;
            }
            return splits ? splitBefore(s, replacement) : List.of(s);
        };
    }

    private static Pattern regex(String pattern) {
        return Pattern.compile(pattern, Pattern.UNICODE_CHARACTER_CLASS);
    }

    /** The matches of `re` and the text between them, in order ("Isolated"), or only the text between ("Removed"). */
    private static List<String> split(String s, Pattern re, String behavior) {
        List<String> out = new ArrayList<>();
        Matcher m = re.matcher(s);
        int last = 0;
        while (m.find()) {
            if (m.end() == m.start()) {
                continue;
            }
            if (m.start() > last) {
                out.add(s.substring(last, m.start()));
            }
            if ("Isolated".equals(behavior)) {
                out.add(m.group());
            }
            last = m.end();
        }
        if (last < s.length()) {
            out.add(s.substring(last));
        }
        return out;
    }

    /** Split before each occurrence of `marker` (Hugging Face's MergedWithNext). */
    private static List<String> splitBefore(String s, String marker) {
        List<String> out = new ArrayList<>();
        int start = 0;
        int i = s.indexOf(marker, 1);
        while (i > 0) {
            out.add(s.substring(start, i));
            start = i;
            i = s.indexOf(marker, i + marker.length());
        }
        out.add(s.substring(start));
        return out;
    }

    private interface CodePointTest {
        boolean test(int cp);
    }

    /** Words between whitespace (dropped); with `punctuation`, each punctuation character is a word of its own. */
    private static List<String> splitOn(String text, boolean punctuation, CodePointTest whitespace) {
        List<String> words = new ArrayList<>();
        StringBuilder word = new StringBuilder();
        text.codePoints().forEach(cp -> {
            if (whitespace.test(cp)) {
                flush(word, words);
            } else if (punctuation && isPunctuation(cp)) {
                flush(word, words);
                words.add(new String(Character.toChars(cp)));
            } else {
                word.appendCodePoint(cp);
            }
        });
        flush(word, words);
        return words;
    }

    private static void flush(StringBuilder word, List<String> words) {
        if (word.length() > 0) {
            words.add(word.toString());
            word.setLength(0);
        }
    }

    static boolean isPunctuation(int cp) {
        if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) {
            return true;
        }
        switch (Character.getType(cp)) {
            case Character.CONNECTOR_PUNCTUATION:
            case Character.DASH_PUNCTUATION:
            case Character.START_PUNCTUATION:
            case Character.END_PUNCTUATION:
            case Character.INITIAL_QUOTE_PUNCTUATION:
            case Character.FINAL_QUOTE_PUNCTUATION:
            case Character.OTHER_PUNCTUATION:
                return true;
            default:
                return false;
        }
    }
}
