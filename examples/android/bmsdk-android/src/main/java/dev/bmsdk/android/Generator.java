package dev.bmsdk.android;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Text generation with a decoder-only LM exported as one step graph (see GenerationSpec): prefill the prompt in
 * chunks (right-padded to an accepted length when the graph takes fixed lengths), then decode one token per call,
 * keeping the KV cache window here. Stops at max_new_tokens, an eos id or a stop string. A full cache is refused
 * or slid (the oldest slots dropped; positions keep increasing). The runner is called with the signature
 * "seq_T" for fixed lengths, "serving_default" otherwise (Boundary.signatureFor).
 */
public final class Generator {
    public enum CachePolicy { REFUSE, SLIDE }

    /** Per-call settings; the defaults are greedy decoding of up to 64 tokens. */
    public static final class Options {
        public int maxNewTokens = 64;
        public float temperature = 0f;
        public int topK = 0;
        public float topP = 1f;
        public long seed = 0;
        public List<String> stopStrings = List.of();
        public CachePolicy cachePolicy = CachePolicy.REFUSE;
    }

    public static final class Result {
        public final int[] promptIds;
        public final int[] tokenIds;
        public final String text;
        /** "length", "eos" or "stop". */
        public final String stopReason;

        Result(int[] promptIds, List<Integer> tokens, String text, String stopReason) {
            this.promptIds = promptIds;
            this.tokenIds = tokens.stream().mapToInt(Integer::intValue).toArray();
            this.text = text;
            this.stopReason = stopReason;
        }
    }

    private final GenerationSpec spec;
    private final BpeTokenizer tokenizer;
    private final ModelRunner runner;

    public Generator(GenerationSpec spec, BpeTokenizer tokenizer, ModelRunner runner) {
        this.spec = spec;
        this.tokenizer = tokenizer;
        this.runner = runner;
    }

    /** Generate from a prompt; `listener` (may be null) receives the text as it is generated. */
    public Result generate(String prompt, Options options, Consumer<String> listener) {
        return generate(tokenizer.encode(prompt), options, listener);
    }

    public Result generate(int[] promptIds, Options options, Consumer<String> listener) {
        if (promptIds.length == 0 || options.maxNewTokens < 1) {
            throw new IllegalArgumentException("generation needs at least one prompt token and max_new_tokens >= 1");
        }
        Session session = new Session(options.cachePolicy);
        Sampler sampler = new Sampler(options.temperature, options.topK, options.topP, options.seed);
        TextStream stream = new TextStream(tokenizer, options.stopStrings, listener);
        float[] row = session.prefill(promptIds);
        List<Integer> tokens = new ArrayList<>();
        String reason = "length";
        while (true) {
            int token = sampler.sample(row, 0, row.length);
            tokens.add(token);
            stream.add(token);
            if (spec.eosIds.contains(token)) {
                reason = "eos";
                break;
            }
            if (stream.stopped()) {
                reason = "stop";
                break;
            }
            if (tokens.size() == options.maxNewTokens) {
                break;
            }
            row = session.step(new int[] {token}, 0, 1, session.width(1));
        }
        stream.finish();
        return new Result(promptIds, tokens, stream.text(), reason);
    }

    /** The cache and position of one generation. */
    private final class Session {
        private final KvCache cache = new KvCache(spec);
        private final CachePolicy policy;
        private int position;

        Session(CachePolicy policy) {
            this.policy = policy;
        }

        /** The prompt in chunks; returns the logits row of its last token. */
        float[] prefill(int[] ids) {
            List<Integer> lengths = spec.prefillLengths;
            int largest = lengths == null ? Math.min(ids.length, cache.length()) : lengths.get(lengths.size() - 1);
            float[] row = null;
            for (int start = 0; start < ids.length; start += largest) {
                int real = Math.min(largest, ids.length - start);
                row = step(ids, start, real, width(real));
            }
            return row;
        }

        /** The length a call of `real` tokens is padded to: the smallest accepted one (decode: 1 when accepted). */
        int width(int real) {
            if (spec.prefillLengths == null) {
                return real;
            }
            for (int t : spec.prefillLengths) {
                if (t >= real) {
                    return t;
                }
            }
            throw new IllegalStateException("no prefill length holds " + real + " tokens");
        }

        /** One call with ids[start .. start+real) right-padded to `width`; returns the last real token's logits. */
        float[] step(int[] ids, int start, int real, int width) {
            makeRoom(real);
            long[] input = new long[width];
            long[] positions = new long[width];
            for (int i = 0; i < width; i++) {
                input[i] = i < real ? ids[start + i] : spec.padId;
                positions[i] = position + i;
            }
            Map<String, TensorData> feeds = new LinkedHashMap<>();
            feeds.put("input_ids", TensorData.of(input, 1, width));
            feeds.put("position_ids", TensorData.of(positions, 1, width));
            feeds.put("attention_mask", TensorData.of(cache.attentionMask(real, width), 1, cache.length() + width));
            cache.addFeeds(feeds);
            Map<String, TensorData> outputs = runner.run(Boundary.signatureFor(spec.prefillLengths == null ? null : width), feeds);
            TensorData logits = outputs.get("logits");
            if (logits == null || logits.floats == null || logits.floats.length % width != 0) {
                throw new IllegalStateException("the step returned no float32 logits [1, " + width + ", vocab]");
            }
            cache.write(outputs, real, width);
            position += real;
            int vocab = logits.floats.length / width;
            float[] row = new float[vocab];
            System.arraycopy(logits.floats, (real - 1) * vocab, row, 0, vocab);
            return row;
        }

        private void makeRoom(int real) {
            int over = cache.valid() + real - cache.length();
            if (over <= 0) {
                return;
            }
            if (policy == CachePolicy.REFUSE || real > cache.length()) {
                throw new IllegalStateException("the KV cache is full: " + cache.valid() + " + " + real
                        + " tokens > cache length " + cache.length() + ". Export the model with a longer cache"
                        + " (cache_length), generate fewer tokens, or use CachePolicy.SLIDE");
            }
            cache.dropOldest(over);
        }
    }
}
