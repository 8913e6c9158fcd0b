package dev.bmsdk.android;

import java.util.Arrays;
import java.util.Map;

/**
 * The caller-kept KV cache window of a step graph: per layer, keys and values [1, H, C, D] (row-major) of which
 * slots 0..valid-1 hold the tokens seen so far. The arrays are fed to the runner as they are (no copy per step):
 * a runner must not keep them after run() returns.
 */
final class KvCache {
    private final int heads;
    private final int slots;
    private final int dim;
    private final float[][] keys;
    private final float[][] values;
    private int valid;

    KvCache(GenerationSpec spec) {
        heads = spec.kvHeads;
        slots = spec.cacheLength;
        dim = spec.headDim;
        keys = new float[spec.layers][heads * slots * dim];
        values = new float[spec.layers][heads * slots * dim];
    }

    int valid() {
        return valid;
    }

    int length() {
        return slots;
    }

    void addFeeds(Map<String, TensorData> feeds) {
        for (int i = 0; i < keys.length; i++) {
            feeds.put("past_key_" + i, TensorData.of(keys[i], 1, heads, slots, dim));
            feeds.put("past_value_" + i, TensorData.of(values[i], 1, heads, slots, dim));
        }
    }

    /** [1, C + width]: the valid slots, then the real new tokens; the empty slots and the padding are 0. */
    long[] attentionMask(int real, int width) {
        long[] mask = new long[slots + width];
        Arrays.fill(mask, 0, valid, 1L);
        Arrays.fill(mask, slots, slots + real, 1L);
        return mask;
    }

    /** The presents [1, H, width, D] of the first `real` new tokens into slots valid.., which become valid. */
    void write(Map<String, TensorData> outputs, int real, int width) {
        for (int i = 0; i < keys.length; i++) {
            copy(present(outputs, "present_key_" + i, width), keys[i], real, width);
            copy(present(outputs, "present_value_" + i, width), values[i], real, width);
        }
        valid += real;
    }

    /** Drop the `count` oldest slots: shift the rest left (the "slide" policy). */
    void dropOldest(int count) {
        for (float[][] kinds : new float[][][] {keys, values}) {
            for (float[] layer : kinds) {
                for (int h = 0; h < heads; h++) {
                    int base = h * slots * dim;
                    System.arraycopy(layer, base + count * dim, layer, base, (valid - count) * dim);
                }
            }
        }
        valid -= count;
    }

    private float[] present(Map<String, TensorData> outputs, String name, int width) {
        TensorData t = outputs.get(name);
        if (t == null || t.floats == null || t.floats.length != heads * width * dim) {
            throw new IllegalStateException("the step returned no float32 " + name + " of shape [1, " + heads + ", "
                    + width + ", " + dim + "]");
        }
        return t.floats;
    }

    private void copy(float[] present, float[] cache, int real, int width) {
        for (int h = 0; h < heads; h++) {
            System.arraycopy(present, h * width * dim, cache, (h * slots + valid) * dim, real * dim);
        }
    }
}
