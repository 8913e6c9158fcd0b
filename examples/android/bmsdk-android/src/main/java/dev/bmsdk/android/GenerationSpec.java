package dev.bmsdk.android;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * What a text-generation step graph fixes: layers, KV heads, head size and cache slots of its past_key_i /
 * past_value_i inputs [1, H, C, D], vocabulary size, the prefill lengths it accepts (null: any), eos and pad ids.
 * Read from the "generation" object of test vectors (the same keys bmsdk writes for an artifact).
 */
public final class GenerationSpec {
    public final int layers;
    public final int kvHeads;
    public final int headDim;
    public final int cacheLength;
    public final int vocabSize;
    public final List<Integer> prefillLengths;
    public final List<Integer> eosIds;
    public final int padId;

    public GenerationSpec(int layers, int kvHeads, int headDim, int cacheLength, int vocabSize,
            List<Integer> prefillLengths, List<Integer> eosIds, int padId) {
        this.layers = layers;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.cacheLength = cacheLength;
        this.vocabSize = vocabSize;
        this.prefillLengths = prefillLengths == null ? null : sorted(prefillLengths);
        this.eosIds = Collections.unmodifiableList(new ArrayList<>(eosIds));
        this.padId = padId;
    }

    public static GenerationSpec fromJson(Map<String, Object> g) {
        return new GenerationSpec(integer(g, "layers"), integer(g, "kv_heads"), integer(g, "head_dim"),
                integer(g, "cache_length"), integer(g, "vocab_size"),
                g.get("prefill_lengths") == null ? null : integers(g.get("prefill_lengths")),
                integers(g.get("eos_ids")), integer(g, "pad_id"));
    }

    /** The same model with another cache window (tests use small ones to fill the cache). */
    public GenerationSpec withCacheLength(int slots) {
        return new GenerationSpec(layers, kvHeads, headDim, slots, vocabSize, prefillLengths, eosIds, padId);
    }

    private static int integer(Map<String, Object> g, String key) {
        if (!g.containsKey(key)) {
            throw new IllegalArgumentException("generation spec: missing " + key);
        }
        return (int) Json.number(g.get(key));
    }

    private static List<Integer> integers(Object list) {
        List<Integer> out = new ArrayList<>();
        for (Object v : Json.array(list)) {
            out.add((int) Json.number(v));
        }
        return out;
    }

    private static List<Integer> sorted(List<Integer> lengths) {
        List<Integer> out = new ArrayList<>(lengths);
        Collections.sort(out);
        return Collections.unmodifiableList(out);
    }
}
