package dev.bmsdk.android;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * BPE tokenization from a Hugging Face tokenizer.json: byte-level BPE (GPT-2, RoBERTa, Llama-3, Qwen: ByteLevel
 * pre-tokenizer, optionally after a Split regex) and SentencePiece-style BPE (Llama-2, Gemma: `▁` for spaces,
 * `<0xNN>` byte fallback). Encoding: the Pipeline (added tokens, normalizer, pre-tokenizer), then each piece is
 * merged by the ranks of `model.merges`; the post-processor adds bos/eos (or RoBERTa's <s> ... </s>).
 * Decoding goes through TokenDecoder.
 */
public final class BpeTokenizer {
    private final Map<String, Integer> vocab = new HashMap<>();
    private final String[] tokens;
    private final Map<Long, long[]> merges = new HashMap<>();  // (left id, right id) -> {rank, merged id}
    private final boolean[] special;
    private final Pipeline pipeline;
    private final PostProcessor post;
    private final Integer unkId;
    private final boolean byteFallback;
    private final boolean fuseUnk;
    private final boolean ignoreMerges;
    private final Map<String, List<Integer>> wordCache = new HashMap<>();
    public final TokenDecoder decoder;

    public BpeTokenizer(String tokenizerJson) {
        this(Json.object(Json.parse(tokenizerJson)));
    }

    BpeTokenizer(Map<String, Object> root) {
        Map<String, Object> model = Json.object(root.get("model"));
        if (!"BPE".equals(model.get("type"))) {
            throw new IllegalArgumentException("not a BPE tokenizer: model type " + model.get("type"));
        }
        if (!isEmpty(model.get("continuing_subword_prefix")) || !isEmpty(model.get("end_of_word_suffix"))) {
            throw new IllegalArgumentException("BPE with a subword prefix or end-of-word suffix is not supported");
        }
        if (model.get("dropout") != null && Json.number(model.get("dropout")) > 0) {
            throw new IllegalArgumentException("BPE with dropout is random: not supported");
        }
        pipeline = new Pipeline(root);
        int size = 0;
        for (Map.Entry<String, Object> e : Json.object(model.get("vocab")).entrySet()) {
            int id = (int) Json.number(e.getValue());
            vocab.put(e.getKey(), id);
            size = Math.max(size, id + 1);
        }
        for (Pipeline.Added a : pipeline.added) {
            size = Math.max(size, a.id + 1);
        }
        tokens = new String[size];
        special = new boolean[size];
        vocab.forEach((token, id) -> tokens[id] = token);
        for (Pipeline.Added a : pipeline.added) {
            tokens[a.id] = a.content;
            special[a.id] = a.special;
        }
        readMerges(Json.array(model.get("merges")));
        unkId = model.get("unk_token") == null ? null : vocab.get((String) model.get("unk_token"));
        byteFallback = Boolean.TRUE.equals(model.get("byte_fallback"));
        fuseUnk = Boolean.TRUE.equals(model.get("fuse_unk"));
        ignoreMerges = Boolean.TRUE.equals(model.get("ignore_merges"));
        post = new PostProcessor(root.get("post_processor"));
        decoder = new TokenDecoder(root.get("decoder"));
    }

    private static boolean isEmpty(Object value) {
        return value == null || "".equals(value);
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
        List<Integer> ids = new ArrayList<>(post.prefix());
        ids.addAll(tokens(text));
        ids.addAll(post.suffix());
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    /** The tokens of `text` with character offsets and word indices, without special tokens around it. */
    List<Pipeline.Token> alignedTokens(String text) {
        if (byteFallback) {
            throw new IllegalArgumentException("character offsets of BPE with byte fallback are not supported");
        }
        return pipeline.encodeAligned(text, new Pipeline.AlignedModel() {
            @Override
            public List<Integer> ids(String piece) {
                return wordCache.computeIfAbsent(piece, BpeTokenizer.this::bpe);
            }

            @Override
            public int[] lengths(String piece, List<Integer> ids) {
                int[] out = new int[ids.size()];
                for (int t = 0; t < out.length; t++) {
                    String token = tokens[ids.get(t)];
                    out[t] = unkId != null && ids.get(t).equals(unkId) ? 1 : token.codePointCount(0, token.length());
                }
                return out;
            }

            @Override
            public String token(int id) {
                return tokens[id];
            }
        });
    }

    Integer unkId() {
        return unkId;
    }

    /** The ids of `text` without special tokens around it. */
    List<Integer> tokens(String text) {
        return pipeline.encode(text, piece -> wordCache.computeIfAbsent(piece, this::bpe));
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
}
