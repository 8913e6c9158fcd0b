package dev.bmsdk.android;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A SentencePiece Unigram tokenizer.json (XLM-RoBERTa, ALBERT, DeBERTa-v2, T5: Precompiled and other normalizers,
 * WhitespaceSplit and Metaspace) as Hugging Face `tokenizers` applies it: the Pipeline, then on each piece the
 * Viterbi path of highest total score over the vocab's pieces, as its optimized encoder computes it (ties keep the
 * first candidate, shortest pieces first; a character no piece covers scores min_score - 10 as unk, and adjacent
 * unknowns fuse into one unk); with byte_fallback an unknown piece becomes its UTF-8 bytes as <0xNN> tokens.
 */
final class UnigramTokenizer {
    private static final double UNK_PENALTY = 10.0;

    private final Map<String, Integer> ids = new HashMap<>();
    private final double[] scores;
    private final int unkId;
    private final boolean byteFallback;
    private final double unkScore;
    private final int longestPiece;  // in UTF-16 units
    private final Pipeline pipeline;

    UnigramTokenizer(Map<String, Object> root) {
        Map<String, Object> model = Json.object(root.get("model"));
        if (!"Unigram".equals(model.get("type"))) {
            throw new IllegalArgumentException("not a Unigram tokenizer: model type " + model.get("type"));
        }
        List<Object> vocab = Json.array(model.get("vocab"));
        scores = new double[vocab.size()];
        double min = Double.POSITIVE_INFINITY;
        int longest = 1;
        for (int id = 0; id < vocab.size(); id++) {
            List<Object> entry = Json.array(vocab.get(id));
            String piece = (String) entry.get(0);
            ids.put(piece, id);
            scores[id] = Json.number(entry.get(1));
            min = Math.min(min, scores[id]);
            longest = Math.max(longest, piece.length());
        }
        unkScore = min - UNK_PENALTY;
        longestPiece = longest;
        unkId = model.get("unk_id") == null ? -1 : (int) Json.number(model.get("unk_id"));
        if (unkId < 0 || unkId >= scores.length) {
            throw new IllegalArgumentException("Unigram: unk_id " + model.get("unk_id") + " is not an id of the vocab");
        }
        byteFallback = Boolean.TRUE.equals(model.get("byte_fallback"));
        pipeline = new Pipeline(root);
    }

    /** The ids of one text, without special tokens around it. */
    List<Integer> tokens(String text) {
        return pipeline.encode(text, this::encodePiece);
    }

    private List<Integer> encodePiece(String piece) {
        List<Integer> out = new ArrayList<>();
        for (String token : viterbi(piece)) {
            Integer id = ids.get(token);
            if (id == null && byteFallback) {
                List<Integer> bytes = new ArrayList<>();
                for (byte b : token.getBytes(StandardCharsets.UTF_8)) {
                    Integer byteId = ids.get(String.format("<0x%02X>", b & 0xFF));
                    if (byteId == null) {
                        bytes = null;
                        break;
                    }
                    bytes.add(byteId);
                }
                if (bytes != null) {
                    out.addAll(bytes);
                    continue;
                }
            }
            out.add(id != null ? id : unkId);
        }
        return out;
    }

    /** The best segmentation of `s` into pieces (unknown stretches fused into one string). */
    private List<String> viterbi(String s) {
        int n = s.length();
        double[] best = new double[n + 1];
        int[] from = new int[n + 1];
        int[] node = new int[n + 1];
        java.util.Arrays.fill(from, -1);
        for (int start = 0; start < n; start = s.offsetByCodePoints(start, 1)) {
            int single = s.offsetByCodePoints(start, 1);
            boolean hasSingle = false;
            for (int end = single; end <= Math.min(n, start + longestPiece); end = end < n ? s.offsetByCodePoints(end, 1) : n + 1) {
                Integer id = ids.get(s.substring(start, end));
                if (id == null) {
                    continue;
                }
                double score = scores[id] + best[start];
                if (from[end] < 0 || score > best[end]) {
                    best[end] = score;
                    from[end] = start;
                    node[end] = id;
                }
                hasSingle |= end == single;
            }
            if (!hasSingle) {
                double score = unkScore + best[start];
                if (from[single] < 0 || score > best[single]) {
                    best[single] = score;
                    from[single] = start;
                    node[single] = unkId;
                }
            }
        }
        List<String> pieces = new ArrayList<>();
        StringBuilder unknown = new StringBuilder();
        for (int end = n; end > 0; end = from[end]) {
            String piece = s.substring(from[end], end);
            if (node[end] == unkId) {
                unknown.insert(0, piece);
                continue;
            }
            if (unknown.length() > 0) {
                pieces.add(unknown.toString());
                unknown.setLength(0);
            }
            pieces.add(piece);
        }
        if (unknown.length() > 0) {
            pieces.add(unknown.toString());
        }
        Collections.reverse(pieces);
        return pieces;
    }
}
