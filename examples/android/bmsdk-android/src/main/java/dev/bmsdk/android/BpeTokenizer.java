package dev.bmsdk.android;

import java.nio.charset.StandardCharsets;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * BPE tokenization from a Hugging Face tokenizer.json, for decoder-only language models: byte-level BPE (GPT-2,
 * Llama-3, Qwen: ByteLevel pre-tokenizer, optionally after a Split regex) and SentencePiece-style BPE (Llama-2,
 * Gemma: `▁` for spaces, `<0xNN>` byte fallback). Encoding: added tokens are matched in the raw text first
 * (longest first), each other segment is normalized, pre-tokenized, then merged by the ranks of `model.merges`;
 * the post-processor's `single` template adds bos/eos. Decoding goes through TokenDecoder.
 *
 * Regexes run on java.util.regex with Unicode character classes, not on Oniguruma as in Hugging Face: they agree on
 * the GPT-2 and Llama-3 patterns for ordinary text; rare whitespace and category edge cases may split differently.
 */
public final class BpeTokenizer {
    private static final String GPT2_SPLIT =
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

    private static final class Added {
        final String content;
        final int id;
        final boolean special;
        final boolean lstrip;
        final boolean rstrip;

        Added(Map<String, Object> t) {
            content = (String) t.get("content");
            id = (int) Json.number(t.get("id"));
            special = Boolean.TRUE.equals(t.get("special"));
            lstrip = Boolean.TRUE.equals(t.get("lstrip"));
            rstrip = Boolean.TRUE.equals(t.get("rstrip"));
        }
    }

    /** One pre-tokenizer step: a piece of text (and whether it starts the input) into pieces. */
    private interface PreStep {
        List<String> apply(String piece, boolean first);
    }

    private final Map<String, Integer> vocab = new HashMap<>();
    private final String[] tokens;
    private final Map<Long, long[]> merges = new HashMap<>();  // (left id, right id) -> {rank, merged id}
    private final List<Added> added = new ArrayList<>();
    private final boolean[] special;
    private final List<UnaryOperator<String>> normalizers = new ArrayList<>();
    private final List<PreStep> preTokenizer = new ArrayList<>();
    private final List<Integer> prefix = new ArrayList<>();
    private final List<Integer> suffix = new ArrayList<>();
    private final Integer unkId;
    private final boolean byteFallback;
    private final boolean fuseUnk;
    private final boolean ignoreMerges;
    private final Map<String, List<Integer>> wordCache = new HashMap<>();
    public final TokenDecoder decoder;

    public BpeTokenizer(String tokenizerJson) {
        Map<String, Object> root = Json.object(Json.parse(tokenizerJson));
        Map<String, Object> model = Json.object(root.get("model"));
        if (!"BPE".equals(model.get("type"))) {
            throw new IllegalArgumentException("not a BPE tokenizer: model type " + model.get("type"));
        }
        if (model.get("continuing_subword_prefix") != null || model.get("end_of_word_suffix") != null) {
            throw new IllegalArgumentException("BPE with a subword prefix or end-of-word suffix is not supported");
        }
        int size = 0;
        for (Map.Entry<String, Object> e : Json.object(model.get("vocab")).entrySet()) {
            int id = (int) Json.number(e.getValue());
            vocab.put(e.getKey(), id);
            size = Math.max(size, id + 1);
        }
        if (root.get("added_tokens") != null) {
            for (Object t : Json.array(root.get("added_tokens"))) {
                Added a = new Added(Json.object(t));
                added.add(a);
                size = Math.max(size, a.id + 1);
            }
        }
        added.sort(Comparator.comparingInt((Added a) -> a.content.length()).reversed());
        tokens = new String[size];
        special = new boolean[size];
        vocab.forEach((token, id) -> tokens[id] = token);
        for (Added a : added) {
            tokens[a.id] = a.content;
            special[a.id] = a.special;
        }
        readMerges(Json.array(model.get("merges")));
        unkId = model.get("unk_token") == null ? null : vocab.get((String) model.get("unk_token"));
        byteFallback = Boolean.TRUE.equals(model.get("byte_fallback"));
        fuseUnk = Boolean.TRUE.equals(model.get("fuse_unk"));
        ignoreMerges = Boolean.TRUE.equals(model.get("ignore_merges"));
        if (root.get("normalizer") != null) {
            addNormalizer(Json.object(root.get("normalizer")));
        }
        if (root.get("pre_tokenizer") != null) {
            addPreTokenizer(Json.object(root.get("pre_tokenizer")));
        }
        if (root.get("post_processor") != null) {
            readPostProcessor(Json.object(root.get("post_processor")));
        }
        decoder = new TokenDecoder(root.get("decoder"));
    }

    public int vocabSize() {
        return tokens.length;
    }

    /** The token string of an id (an added token's content). */
    public String token(int id) {
        return tokens[id];
    }

    public boolean isSpecial(int id) {
        return special[id];
    }

    /** The ids of `text` with the post-processor's special tokens (bos), as Hugging Face's encode. */
    public int[] encode(String text) {
        List<Integer> ids = new ArrayList<>(prefix);
        boolean first = true;
        int start = 0;
        while (start <= text.length()) {
            int[] match = nextAdded(text, start);  // {begin, end, index into added}, or null
            int end = match == null ? text.length() : match[0];
            if (end > start) {
                encodeSegment(text.substring(start, end), first, ids);
            }
            if (match == null) {
                break;
            }
            ids.add(added.get(match[2]).id);
            first = false;
            start = match[1];
        }
        ids.addAll(suffix);
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Text of `ids`, special tokens left out (skip_special_tokens=True). */
    public String decode(int[] ids) {
        List<String> kept = new ArrayList<>();
        for (int id : ids) {
            if (!special[id]) {
                kept.add(tokens[id]);
            }
        }
        return decoder.decode(kept);
    }

    private void readMerges(List<Object> list) {
        for (int rank = 0; rank < list.size(); rank++) {
            Object m = list.get(rank);
            String left;
            String right;
            if (m instanceof String) {
                String s = (String) m;
                int space = s.indexOf(' ', 1);
                left = s.substring(0, space);
                right = s.substring(space + 1);
            } else {
                List<Object> pair = Json.array(m);
                left = (String) pair.get(0);
                right = (String) pair.get(1);
            }
            Integer a = vocab.get(left);
            Integer b = vocab.get(right);
            Integer merged = vocab.get(left + right);
            if (a != null && b != null && merged != null) {
                merges.putIfAbsent(pairKey(a, b), new long[] {rank, merged});
            }
        }
    }

    private static long pairKey(int a, int b) {
        return ((long) a << 32) | (b & 0xFFFFFFFFL);
    }

    private int[] nextAdded(String text, int from) {
        for (int i = from; i < text.length(); i++) {
            for (int k = 0; k < added.size(); k++) {
                Added a = added.get(k);
                if (!a.content.isEmpty() && text.startsWith(a.content, i)) {
                    int begin = i;
                    int end = i + a.content.length();
                    while (a.lstrip && begin > from && Character.isWhitespace(text.charAt(begin - 1))) {
                        begin--;
                    }
                    while (a.rstrip && end < text.length() && Character.isWhitespace(text.charAt(end))) {
                        end++;
                    }
                    return new int[] {begin, end, k};
                }
            }
        }
        return null;
    }

    private void encodeSegment(String segment, boolean first, List<Integer> out) {
        for (UnaryOperator<String> n : normalizers) {
            segment = n.apply(segment);
        }
        List<String> pieces = List.of(segment);
        for (PreStep step : preTokenizer) {
            List<String> next = new ArrayList<>();
            for (int i = 0; i < pieces.size(); i++) {
                next.addAll(step.apply(pieces.get(i), first && i == 0));
            }
            pieces = next;
        }
        for (String piece : pieces) {
            if (!piece.isEmpty()) {
                out.addAll(wordCache.computeIfAbsent(piece, this::bpe));
            }
        }
    }

    /** BPE of one pre-token: its characters (byte fallback or unk where the vocab lacks one), then merges by rank. */
    private List<Integer> bpe(String word) {
        if (ignoreMerges && vocab.containsKey(word)) {
            return List.of(vocab.get(word));
        }
        List<Integer> symbols = new ArrayList<>();
        for (int i = 0; i < word.length(); ) {
            int cp = word.codePointAt(i);
            String c = new String(Character.toChars(cp));
            i += c.length();
            Integer id = vocab.get(c);
            if (id != null) {
                symbols.add(id);
            } else if ((!byteFallback || !addBytes(c, symbols)) && unkId != null) {
                if (!(fuseUnk && !symbols.isEmpty() && symbols.get(symbols.size() - 1).equals(unkId))) {
                    symbols.add(unkId);
                }
            }  // without unk_token, a character outside the vocab is dropped (as Hugging Face does)
        }
        while (symbols.size() > 1) {
            int best = -1;
            long[] bestMerge = null;
            for (int i = 0; i + 1 < symbols.size(); i++) {
                long[] m = merges.get(pairKey(symbols.get(i), symbols.get(i + 1)));
                if (m != null && (bestMerge == null || m[0] < bestMerge[0])) {
                    best = i;
                    bestMerge = m;
                }
            }
            if (best < 0) {
                break;
            }
            symbols.set(best, (int) bestMerge[1]);
            symbols.remove(best + 1);
        }
        return symbols;
    }

    private boolean addBytes(String c, List<Integer> symbols) {
        List<Integer> ids = new ArrayList<>();
        for (byte b : c.getBytes(StandardCharsets.UTF_8)) {
            Integer id = vocab.get(String.format("<0x%02X>", b & 0xFF));
            if (id == null) {
                return false;
            }
            ids.add(id);
        }
        symbols.addAll(ids);
        return true;
    }

    private void addNormalizer(Map<String, Object> n) {
        String type = (String) n.get("type");
        switch (type) {
            case "Sequence":
                for (Object inner : Json.array(n.get("normalizers"))) {
                    addNormalizer(Json.object(inner));
                }
                break;
            case "NFC": normalizers.add(s -> Normalizer.normalize(s, Normalizer.Form.NFC)); break;
            case "NFD": normalizers.add(s -> Normalizer.normalize(s, Normalizer.Form.NFD)); break;
            case "NFKC": normalizers.add(s -> Normalizer.normalize(s, Normalizer.Form.NFKC)); break;
            case "NFKD": normalizers.add(s -> Normalizer.normalize(s, Normalizer.Form.NFKD)); break;
            case "Lowercase": normalizers.add(s -> s.toLowerCase(java.util.Locale.ROOT)); break;
            case "Prepend": {
                String p = (String) n.get("prepend");
                normalizers.add(s -> s.isEmpty() ? s : p + s);
                break;
            }
            case "Replace": {
                Map<String, Object> pattern = Json.object(n.get("pattern"));
                String content = (String) n.get("content");
                if (pattern.containsKey("String")) {
                    String from = (String) pattern.get("String");
                    normalizers.add(s -> s.replace(from, content));
                } else {
                    Pattern re = regex((String) pattern.get("Regex"));
                    normalizers.add(s -> re.matcher(s).replaceAll(Matcher.quoteReplacement(content)));
                }
                break;
            }
            default:
                throw new IllegalArgumentException("unsupported tokenizer normalizer " + type);
        }
    }

    private void addPreTokenizer(Map<String, Object> p) {
        String type = (String) p.get("type");
        switch (type) {
            case "Sequence":
                for (Object inner : Json.array(p.get("pretokenizers"))) {
                    addPreTokenizer(Json.object(inner));
                }
                break;
            case "ByteLevel": {
                boolean prefixSpace = Boolean.TRUE.equals(p.get("add_prefix_space"));
                Pattern re = Boolean.FALSE.equals(p.get("use_regex")) ? null : regex(GPT2_SPLIT);
                preTokenizer.add((piece, first) -> {
                    String s = prefixSpace && !piece.startsWith(" ") ? " " + piece : piece;
                    List<String> out = new ArrayList<>();
                    for (String part : re == null ? List.of(s) : split(s, re, "Isolated")) {
                        out.add(ByteLevel.encode(part));
                    }
                    return out;
                });
                break;
            }
            case "Split": {
                Map<String, Object> pattern = Json.object(p.get("pattern"));
                Pattern re = pattern.containsKey("Regex") ? regex((String) pattern.get("Regex"))
                        : Pattern.compile(Pattern.quote((String) pattern.get("String")));
                String behavior = (String) p.get("behavior");
                if (Boolean.TRUE.equals(p.get("invert")) || !("Isolated".equals(behavior) || "Removed".equals(behavior))) {
                    throw new IllegalArgumentException("pre-tokenizer Split: only Isolated or Removed, not inverted");
                }
                preTokenizer.add((piece, first) -> split(piece, re, behavior));
                break;
            }
            case "Metaspace": {
                String replacement = (String) p.get("replacement");
                String scheme = p.containsKey("prepend_scheme") ? (String) p.get("prepend_scheme")
                        : Boolean.FALSE.equals(p.get("add_prefix_space")) ? "never" : "always";
                boolean splits = !Boolean.FALSE.equals(p.get("split"));
                preTokenizer.add((piece, first) -> {
                    String s = piece.replace(" ", replacement);
                    boolean prepend = "always".equals(scheme) || ("first".equals(scheme) && first);
                    if (prepend && !s.startsWith(replacement)) {
                        s = replacement + s;
                    }
                    return splits ? splitBefore(s, replacement) : List.of(s);
                });
                break;
            }
            default:
                throw new IllegalArgumentException("unsupported tokenizer pre-tokenizer " + type);
        }
    }

    private void readPostProcessor(Map<String, Object> p) {
        String type = (String) p.get("type");
        switch (type) {
            case "Sequence":
                for (Object inner : Json.array(p.get("processors"))) {
                    readPostProcessor(Json.object(inner));
                }
                break;
            case "ByteLevel":
                break;  // adjusts offsets only
            case "TemplateProcessing": {
                Map<String, Object> specials = Json.object(p.get("special_tokens"));
                List<Integer> target = prefix;
                for (Object item : Json.array(p.get("single"))) {
                    Map<String, Object> piece = Json.object(item);
                    if (piece.containsKey("Sequence")) {
                        target = suffix;
                        continue;
                    }
                    String name = (String) Json.object(piece.get("SpecialToken")).get("id");
                    for (Object id : Json.array(Json.object(specials.get(name)).get("ids"))) {
                        target.add((int) Json.number(id));
                    }
                }
                break;
            }
            default:
                throw new IllegalArgumentException("unsupported tokenizer post-processor " + type);
        }
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
}
