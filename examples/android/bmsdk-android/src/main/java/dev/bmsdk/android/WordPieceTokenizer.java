package dev.bmsdk.android;

import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * BERT tokenization as Hugging Face `tokenizers` does it from a tokenizer.json (BertNormalizer, BertPreTokenizer,
 * WordPiece, [CLS] ... [SEP] template), so that ids equal those of bmsdk's Python pre-processing:
 * clean text, pad CJK characters, lowercase and strip accents, split on whitespace and punctuation, then greedy
 * longest-match WordPiece with the "##" prefix; a word with no match becomes [UNK]; truncation keeps room for the
 * special tokens. No padding: one text gives exactly its tokens (the runtime pads to a bucket).
 */
public final class WordPieceTokenizer {
    /** Token ids, attention mask and token type ids of one text. */
    public static final class Encoding {
        public final long[] ids;
        public final long[] attentionMask;
        public final long[] typeIds;

        Encoding(long[] ids) {
            this.ids = ids;
            this.attentionMask = new long[ids.length];
            this.typeIds = new long[ids.length];
            java.util.Arrays.fill(attentionMask, 1L);
        }
    }

    private final Map<String, Integer> vocab;
    private final String unkToken;
    private final String prefix;
    private final int maxCharsPerWord;
    private final boolean cleanText;
    private final boolean chineseChars;
    private final boolean stripAccents;
    private final boolean lowercase;
    private final List<Integer> prefixIds = new ArrayList<>();
    private final List<Integer> suffixIds = new ArrayList<>();
    private final List<String> addedTokens = new ArrayList<>();
    private final int maxLength;

    /** From the text of a tokenizer.json and the artifact's max_length (special tokens included). */
    public WordPieceTokenizer(String tokenizerJson, int maxLength) {
        Map<String, Object> root = Json.object(Json.parse(tokenizerJson));
        Map<String, Object> model = Json.object(root.get("model"));
        if (!"WordPiece".equals(model.get("type"))) {
            throw new IllegalArgumentException("only WordPiece tokenizers are supported, got " + model.get("type"));
        }
        vocab = new HashMap<>();
        for (Map.Entry<String, Object> e : Json.object(model.get("vocab")).entrySet()) {
            vocab.put(e.getKey(), (int) Json.number(e.getValue()));
        }
        unkToken = (String) model.get("unk_token");
        prefix = model.get("continuing_subword_prefix") == null ? "##" : (String) model.get("continuing_subword_prefix");
        maxCharsPerWord = model.get("max_input_chars_per_word") == null ? 100 : (int) Json.number(model.get("max_input_chars_per_word"));

        Map<String, Object> norm = root.get("normalizer") == null ? null : Json.object(root.get("normalizer"));
        if (norm != null && !"BertNormalizer".equals(norm.get("type"))) {
            throw new IllegalArgumentException("only the BertNormalizer is supported, got " + norm.get("type"));
        }
        cleanText = norm != null && !Boolean.FALSE.equals(norm.get("clean_text"));
        chineseChars = norm != null && !Boolean.FALSE.equals(norm.get("handle_chinese_chars"));
        lowercase = norm != null && !Boolean.FALSE.equals(norm.get("lowercase"));
        stripAccents = norm != null && (norm.get("strip_accents") == null ? lowercase : Boolean.TRUE.equals(norm.get("strip_accents")));
        Object pre = root.get("pre_tokenizer");
        if (pre != null && !"BertPreTokenizer".equals(Json.object(pre).get("type"))) {
            throw new IllegalArgumentException("only the BertPreTokenizer is supported, got " + Json.object(pre).get("type"));
        }
        readTemplate(root.get("post_processor"));
        if (root.get("added_tokens") != null) {
            for (Object t : Json.array(root.get("added_tokens"))) {
                addedTokens.add((String) Json.object(t).get("content"));
            }
            addedTokens.sort(Comparator.comparingInt(String::length).reversed());
        }
        this.maxLength = maxLength;
    }

    private void readTemplate(Object processor) {
        if (processor == null) {
            return;
        }
        Map<String, Object> post = Json.object(processor);
        if ("BertProcessing".equals(post.get("type"))) {
            prefixIds.add((int) Json.number(Json.array(post.get("cls")).get(1)));
            suffixIds.add((int) Json.number(Json.array(post.get("sep")).get(1)));
            return;
        }
        if (!"TemplateProcessing".equals(post.get("type"))) {
            throw new IllegalArgumentException("unsupported post-processor " + post.get("type"));
        }
        Map<String, Object> specials = Json.object(post.get("special_tokens"));
        List<Integer> target = prefixIds;
        for (Object piece : Json.array(post.get("single"))) {
            Map<String, Object> p = Json.object(piece);
            if (p.containsKey("Sequence")) {
                target = suffixIds;
                continue;
            }
            String id = (String) Json.object(p.get("SpecialToken")).get("id");
            for (Object v : Json.array(Json.object(specials.get(id)).get("ids"))) {
                target.add((int) Json.number(v));
            }
        }
    }

    public int vocabSize() {
        return vocab.size();
    }

    /** The tokens of one text, with special tokens, truncated to max_length. */
    public Encoding encode(String text) {
        List<Integer> ids = new ArrayList<>();
        for (String segment : splitAdded(text)) {
            Integer added = addedTokens.contains(segment) ? vocab.get(segment) : null;
            if (added != null) {
                ids.add(added);
                continue;
            }
            for (String word : preTokenize(normalize(segment))) {
                wordPiece(word, ids);
            }
        }
        int room = Math.max(0, maxLength - prefixIds.size() - suffixIds.size());
        List<Integer> all = new ArrayList<>(prefixIds);
        all.addAll(ids.subList(0, Math.min(room, ids.size())));
        all.addAll(suffixIds);
        long[] out = new long[all.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = all.get(i);
        }
        return new Encoding(out);
    }

    /** Added (special) tokens written literally in the text are matched before normalization. */
    private List<String> splitAdded(String text) {
        List<String> parts = new ArrayList<>();
        int start = 0;
        int i = 0;
        outer:
        while (i < text.length()) {
            for (String token : addedTokens) {
                if (!token.isEmpty() && text.startsWith(token, i)) {
                    if (i > start) {
                        parts.add(text.substring(start, i));
                    }
                    parts.add(token);
                    i += token.length();
                    start = i;
                    continue outer;
                }
            }
            i++;
        }
        if (start < text.length()) {
            parts.add(text.substring(start));
        }
        return parts;
    }

    String normalize(String text) {
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
        return lowercase ? s.toLowerCase(Locale.ROOT) : s;
    }

    static List<String> preTokenize(String text) {
        List<String> words = new ArrayList<>();
        StringBuilder word = new StringBuilder();
        text.codePoints().forEach(cp -> {
            if (isWhitespace(cp)) {
                flush(word, words);
            } else if (isPunctuation(cp)) {
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

    private void wordPiece(String word, List<Integer> ids) {
        int[] cps = word.codePoints().toArray();
        if (cps.length > maxCharsPerWord) {
            ids.add(vocab.get(unkToken));
            return;
        }
        List<Integer> pieces = new ArrayList<>();
        int start = 0;
        while (start < cps.length) {
            int end = cps.length;
            Integer found = null;
            while (start < end) {
                String piece = new String(cps, start, end - start);
                if (start > 0) {
                    piece = prefix + piece;
                }
                found = vocab.get(piece);
                if (found != null) {
                    break;
                }
                end--;
            }
            if (found == null) {
                ids.add(vocab.get(unkToken));
                return;
            }
            pieces.add(found);
            start = end;
        }
        ids.addAll(pieces);
    }

    static boolean isWhitespace(int cp) {
        return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || Character.isWhitespace(cp)
                || Character.getType(cp) == Character.SPACE_SEPARATOR;
    }

    /** Cc, Cf and Co; unlike the Unicode definition, not unassigned code points (Hugging Face keeps those). */
    static boolean isControl(int cp) {
        if (cp == '\t' || cp == '\n' || cp == '\r') {
            return false;
        }
        int type = Character.getType(cp);
        return type == Character.CONTROL || type == Character.FORMAT || type == Character.PRIVATE_USE;
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

    static boolean isChinese(int cp) {
        return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF)
                || (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF)
                || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
    }
}
