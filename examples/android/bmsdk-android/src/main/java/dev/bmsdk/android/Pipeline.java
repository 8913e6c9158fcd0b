package dev.bmsdk.android;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.UnaryOperator;

/**
 * What a tokenizer.json does before its model, as Hugging Face `tokenizers` does it: added tokens are found in the
 * raw text first (leftmost, then longest; lstrip/rstrip take the whitespace beside them), each other segment is
 * normalized, then added tokens marked `normalized` are found in it, and each remaining segment is pre-tokenized
 * into pieces that the model (WordPiece, BPE, Unigram) turns into ids. Added tokens with `single_word` are refused.
 */
final class Pipeline {
    /** One entry of `added_tokens`. */
    static final class Added {
        final String content;
        final int id;
        final boolean special;
        final boolean lstrip;
        final boolean rstrip;
        final boolean normalized;

        Added(Map<String, Object> t) {
            content = (String) t.get("content");
            id = (int) Json.number(t.get("id"));
            special = Boolean.TRUE.equals(t.get("special"));
            lstrip = Boolean.TRUE.equals(t.get("lstrip"));
            rstrip = Boolean.TRUE.equals(t.get("rstrip"));
            normalized = Boolean.TRUE.equals(t.get("normalized"));
            if (Boolean.TRUE.equals(t.get("single_word"))) {
                throw new IllegalArgumentException("added token " + content + ": single_word is not supported");
            }
        }
    }

    final List<Added> added = new ArrayList<>();
    private final List<Added> raw = new ArrayList<>();
    private final List<Added> afterNormalizer = new ArrayList<>();
    private final UnaryOperator<String> normalizer;
    private final List<PreTokenizers.Step> preTokenizer;

    Pipeline(Map<String, Object> root) {
        if (root.get("added_tokens") != null) {
            for (Object t : Json.array(root.get("added_tokens"))) {
                Added a = new Added(Json.object(t));
                added.add(a);
                if (!a.content.isEmpty()) {
                    (a.normalized ? afterNormalizer : raw).add(a);
                }
            }
        }
        Comparator<Added> longestFirst = Comparator.comparingInt((Added a) -> a.content.length()).reversed();
        raw.sort(longestFirst);
        afterNormalizer.sort(longestFirst);
        normalizer = Normalizers.read(root.get("normalizer"));
        preTokenizer = PreTokenizers.read(root.get("pre_tokenizer"));
    }

    /** The ids of `text` without the post-processor's special tokens; `model` turns one piece into ids. */
    List<Integer> encode(String text, Function<String, List<Integer>> model) {
        List<Integer> ids = new ArrayList<>();
        split(text, raw, ids, (segment, atStart) -> split(normalizer.apply(segment), afterNormalizer, ids, (normalized, first) -> {
            List<String> pieces = List.of(normalized);
            for (PreTokenizers.Step step : preTokenizer) {
                List<String> next = new ArrayList<>();
                for (int i = 0; i < pieces.size(); i++) {
                    if (!pieces.get(i).isEmpty()) {  // Hugging Face drops empty pieces (and prepends nothing to them)
                        next.addAll(step.apply(pieces.get(i), atStart && first && i == 0));
                    }
                }
                pieces = next;
            }
            for (String piece : pieces) {
                if (!piece.isEmpty()) {
                    ids.addAll(model.apply(piece));
                }
            }
        }));
        return ids;
    }

    /** One token with its character offsets (code points of the original text) and the index of its word. */
    static final class Token {
        final int id;
        final String value;
        final int start;
        final int end;
        final int word;

        Token(int id, String value, int start, int end, int word) {
            this.id = id;
            this.value = value;
            this.start = start;
            this.end = end;
            this.word = word;
        }
    }

    /** A model for encodeAligned: the ids of one piece, and the code points of the piece each id covers. */
    interface AlignedModel {
        List<Integer> ids(String piece);

        int[] lengths(String piece, List<Integer> ids);

        String token(int id);
    }

    /** Text with, for each UTF-16 unit, the span [start, end) of original code points it came from. */
    private static final class Aligned {
        final String s;
        final int[] start;
        final int[] end;

        Aligned(String s, int[] start, int[] end) {
            this.s = s;
            this.start = start;
            this.end = end;
        }

        Aligned sub(int from, int to) {
            return new Aligned(s.substring(from, to), Arrays.copyOfRange(start, from, to), Arrays.copyOfRange(end, from, to));
        }
    }

    /**
     * The tokens of `text` (no post-processor special tokens) with their character offsets, as Hugging Face's
     * Encoding gives them before the post-processor: offsets follow each character through the normalizer (applied
     * per character: a normalizer that works across characters, as NFC or Strip, is refused here) and the
     * pre-tokenizer (splits, and ByteLevel's byte alphabet: a byte maps to its character); word = pre-token index.
     */
    List<Token> encodeAligned(String text, AlignedModel model) {
        int[] cpAt = new int[text.length() + 1];
        for (int i = 0, cp = 0; i < text.length(); cp++) {
            int n = Character.charCount(text.codePointAt(i));
            for (int k = 0; k < n; k++) {
                cpAt[i + k] = cp;
            }
            i += n;
            cpAt[i] = cp + 1;
        }
        int[] st = new int[text.length()];
        int[] en = new int[text.length()];
        for (int i = 0; i < text.length(); i++) {
            st[i] = cpAt[i];
            en[i] = cpAt[i] + 1;
        }
        List<Token> out = new ArrayList<>();
        int[] word = {0};
        splitAligned(new Aligned(text, st, en), raw, out, word, (segment, atStart) -> {
            Aligned normalized = normalize(segment);
            splitAligned(normalized, afterNormalizer, out, word, (part, first) -> {
                List<Aligned> pieces = List.of(part);
                for (PreTokenizers.Step step : preTokenizer) {
                    List<Aligned> next = new ArrayList<>();
                    for (int i = 0; i < pieces.size(); i++) {
                        Aligned piece = pieces.get(i);
                        if (!piece.s.isEmpty()) {
                            next.addAll(preTokenize(step, piece, atStart && first && i == 0));
                        }
                    }
                    pieces = next;
                }
                for (Aligned piece : pieces) {
                    if (piece.s.isEmpty()) {
                        continue;
                    }
                    List<Integer> ids = model.ids(piece.s);
                    int[] lengths = model.lengths(piece.s, ids);
                    int at = 0;
                    for (int t = 0; t < ids.size(); t++) {
                        int from = at;
                        for (int k = 0; k < lengths[t]; k++) {
                            at += Character.charCount(piece.s.codePointAt(at));
                        }
                        int s0 = from < piece.s.length() ? piece.start[from] : piece.end[piece.s.length() - 1];
                        int e0 = at > from ? piece.end[at - 1] : s0;
                        out.add(new Token(ids.get(t), model.token(ids.get(t)), s0, e0, word[0]));
                    }
                    word[0]++;
                }
            });
        });
        return out;
    }

    private Aligned normalize(Aligned segment) {
        StringBuilder sb = new StringBuilder();
        List<int[]> spans = new ArrayList<>();
        String s = segment.s;
        for (int i = 0; i < s.length(); ) {
            int n = Character.charCount(s.codePointAt(i));
            String piece = normalizer.apply(s.substring(i, i + n));
            sb.append(piece);
            for (int k = 0; k < piece.length(); k++) {
                spans.add(new int[] {segment.start[i], segment.end[i]});
            }
            i += n;
        }
        String whole = normalizer.apply(s);
        if (!whole.contentEquals(sb)) {
            throw new IllegalArgumentException("character offsets need a normalizer that works per character; this "
                    + "tokenizer's changes \"" + s + "\" across characters");
        }
        int[] st = new int[spans.size()];
        int[] en = new int[spans.size()];
        for (int i = 0; i < st.length; i++) {
            st[i] = spans.get(i)[0];
            en[i] = spans.get(i)[1];
        }
        return new Aligned(whole, st, en);
    }

    private static List<Aligned> preTokenize(PreTokenizers.Step step, Aligned piece, boolean first) {
        List<Aligned> out = new ArrayList<>();
        if (step instanceof PreTokenizers.ByteLevelStep) {
            PreTokenizers.ByteLevelStep byteLevel = (PreTokenizers.ByteLevelStep) step;
            boolean prepended = byteLevel.prepends(piece.s);
            int at = 0;
            for (String part : byteLevel.parts(piece.s)) {
                String spelled = ByteLevel.encode(part);
                int[] st = new int[spelled.length()];
                int[] en = new int[spelled.length()];
                int b = 0;
                boolean prefix = prepended;
                prepended = false;
                for (int i = 0; i < part.length(); ) {
                    int cp = part.codePointAt(i);
                    int n = Character.charCount(cp);
                    int bytes = new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8).length;
                    int src = prefix && i == 0 ? 0 : at;  // a prepended space takes the first character's offsets
                    for (int k = 0; k < bytes; k++, b++) {
                        st[b] = piece.start[src];
                        en[b] = piece.end[src];
                    }
                    if (!(prefix && i == 0)) {
                        at += n;
                    }
                    i += n;
                }
                out.add(new Aligned(spelled, st, en));
            }
            return out;
        }
        int at = 0;
        for (String part : step.apply(piece.s, first)) {
            int i = piece.s.indexOf(part, at);
            if (i < 0) {
                throw new IllegalArgumentException("character offsets: this pre-tokenizer rewrites the text (only "
                        + "splitting ones and ByteLevel keep offsets)");
            }
            out.add(piece.sub(i, i + part.length()));
            at = i + part.length();
        }
        return out;
    }

    private interface AlignedSegment {
        void accept(Aligned text, boolean atStart);
    }

    private static void splitAligned(Aligned text, List<Added> tokens, List<Token> out, int[] word, AlignedSegment segment) {
        int start = 0;
        while (true) {
            int[] match = next(text.s, start, tokens);
            int end = match == null ? text.s.length() : match[0];
            if (end > start || (match == null && start == 0)) {
                segment.accept(text.sub(start, end), start == 0);
            }
            if (match == null) {
                return;
            }
            Added a = tokens.get(match[2]);
            out.add(new Token(a.id, a.content, text.start[match[0]], text.end[match[1] - 1], word[0]++));
            start = match[1];
        }
    }

    private interface Segment {
        void accept(String text, boolean atStart);
    }

    /** Hands each stretch of `text` between added tokens to `segment`, and adds each token's id, in order. */
    private static void split(String text, List<Added> tokens, List<Integer> ids, Segment segment) {
        int start = 0;
        while (true) {
            int[] match = next(text, start, tokens);  // {begin, end, index into tokens}, or null
            int end = match == null ? text.length() : match[0];
            if (end > start || (match == null && start == 0)) {
                segment.accept(text.substring(start, end), start == 0);
            }
            if (match == null) {
                return;
            }
            ids.add(tokens.get(match[2]).id);
            start = match[1];
        }
    }

    private static int[] next(String text, int from, List<Added> tokens) {
        for (int i = from; i < text.length(); i++) {
            for (int k = 0; k < tokens.size(); k++) {
                Added a = tokens.get(k);
                if (text.startsWith(a.content, i)) {
                    int begin = i;
                    int end = i + a.content.length();
                    while (a.lstrip && begin > from && Normalizers.isWhitespace(text.charAt(begin - 1))) {
                        begin--;
                    }
                    while (a.rstrip && end < text.length() && Normalizers.isWhitespace(text.charAt(end))) {
                        end++;
                    }
                    return new int[] {begin, end, k};
                }
            }
        }
        return null;
    }
}
