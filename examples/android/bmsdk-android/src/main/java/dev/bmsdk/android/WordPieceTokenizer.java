package dev.bmsdk.android;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A WordPiece tokenizer.json (BERT: BertNormalizer, BertPreTokenizer, WordPiece) as Hugging Face `tokenizers`
 * applies it: the Pipeline's added tokens, normalizer and pre-tokenizer, then greedy longest-match WordPiece with
 * the "##" prefix on each word; a word with no match, or longer than max_input_chars_per_word, becomes [UNK].
 * Special tokens around the text come from the PostProcessor (TextTokenizer puts them together).
 */
final class WordPieceTokenizer {
    private final Map<String, Integer> vocab = new HashMap<>();
    private final Pipeline pipeline;
    private final int unkId;
    private final String prefix;
    private final int maxCharsPerWord;

    WordPieceTokenizer(Map<String, Object> root) {
        Map<String, Object> model = Json.object(root.get("model"));
        if (!"WordPiece".equals(model.get("type"))) {
            throw new IllegalArgumentException("not a WordPiece tokenizer: model type " + model.get("type"));
        }
        for (Map.Entry<String, Object> e : Json.object(model.get("vocab")).entrySet()) {
            vocab.put(e.getKey(), (int) Json.number(e.getValue()));
        }
        Integer unk = vocab.get((String) model.get("unk_token"));
        if (unk == null) {
            throw new IllegalArgumentException("WordPiece: the vocab has no unk_token " + model.get("unk_token"));
        }
        unkId = unk;
        prefix = model.get("continuing_subword_prefix") == null ? "##" : (String) model.get("continuing_subword_prefix");
        maxCharsPerWord = model.get("max_input_chars_per_word") == null ? 100 : (int) Json.number(model.get("max_input_chars_per_word"));
        pipeline = new Pipeline(root);
    }

    /** The tokens of one text with character offsets and word indices, without special tokens around it. */
    List<Pipeline.Token> alignedTokens(String text) {
        Map<Integer, String> byId = new HashMap<>();
        vocab.forEach((token, id) -> byId.put(id, token));
        for (Pipeline.Added a : pipeline.added) {
            byId.put(a.id, a.content);
        }
        return pipeline.encodeAligned(text, new Pipeline.AlignedModel() {
            @Override
            public List<Integer> ids(String piece) {
                return wordPiece(piece);
            }

            @Override
            public int[] lengths(String piece, List<Integer> ids) {
                if (ids.size() == 1 && ids.get(0) == unkId) {
                    return new int[] {piece.codePointCount(0, piece.length())};
                }
                int[] out = new int[ids.size()];
                for (int t = 0; t < out.length; t++) {
                    String token = byId.get(ids.get(t));
                    String bare = t > 0 && token.startsWith(prefix) ? token.substring(prefix.length()) : token;
                    out[t] = bare.codePointCount(0, bare.length());
                }
                return out;
            }

            @Override
            public String token(int id) {
                return byId.get(id);
            }
        });
    }

    /** Whether pieces that continue a word are marked (the continuing_subword_prefix, "##"). */
    boolean wordAware() {
        return !prefix.isEmpty();
    }

    int unkId() {
        return unkId;
    }

    /** The ids of one text, without special tokens around it. */
    List<Integer> tokens(String text) {
        return pipeline.encode(text, this::wordPiece);
    }

    private List<Integer> wordPiece(String word) {
        int[] cps = word.codePoints().toArray();
        if (cps.length > maxCharsPerWord) {
            return List.of(unkId);
        }
        List<Integer> pieces = new ArrayList<>();
        int start = 0;
        while (start < cps.length) {
            int end = cps.length;
            Integer found = null;
            while (start < end) {
                String piece = new String(cps, start, end - start);
                found = vocab.get(start > 0 ? prefix + piece : piece);
                if (found != null) {
                    break;
                }
                end--;
            }
            if (found == null) {
                return List.of(unkId);
            }
            pieces.add(found);
            start = end;
        }
        return pieces;
    }
}
