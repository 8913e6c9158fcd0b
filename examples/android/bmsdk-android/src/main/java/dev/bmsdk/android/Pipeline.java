package dev.bmsdk.android;

import java.util.ArrayList;
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
