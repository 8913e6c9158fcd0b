package dev.bmsdk.android;

import java.util.Arrays;

/**
 * The next token from one logits row: greedy (argmax, the first of equal maxima) when temperature is 0, otherwise
 * softmax(logits / temperature) restricted to the top_k most likely tokens (0: all) and then to the smallest set
 * whose probability reaches top_p (1: all), sampled with a seeded SplitMix64 generator (the same sequence in the
 * Swift package for the same seed).
 */
public final class Sampler {
    private final float temperature;
    private final int topK;
    private final float topP;
    private long state;

    public Sampler(float temperature, int topK, float topP, long seed) {
        if (temperature < 0 || topK < 0 || topP <= 0 || topP > 1) {
            throw new IllegalArgumentException("need temperature >= 0, top_k >= 0 and 0 < top_p <= 1");
        }
        this.temperature = temperature;
        this.topK = topK;
        this.topP = topP;
        this.state = seed;
    }

    public static Sampler greedy() {
        return new Sampler(0f, 0, 1f, 0);
    }

    public static int argmax(float[] logits, int offset, int length) {
        int best = 0;
        for (int i = 1; i < length; i++) {
            if (logits[offset + i] > logits[offset + best]) {
                best = i;
            }
        }
        return best;
    }

    /** A token from logits[offset .. offset + vocab). */
    public int sample(float[] logits, int offset, int vocab) {
        if (temperature == 0f) {
            return argmax(logits, offset, vocab);
        }
        Integer[] order = new Integer[vocab];
        for (int i = 0; i < vocab; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Float.compare(logits[offset + b], logits[offset + a]));  // stable: ties by id
        int keep = topK > 0 ? Math.min(topK, vocab) : vocab;
        double max = logits[offset + order[0]];
        double[] p = new double[keep];
        double sum = 0;
        for (int i = 0; i < keep; i++) {
            p[i] = Math.exp((logits[offset + order[i]] - max) / temperature);
            sum += p[i];
        }
        double cumulative = 0;
        int nucleus = keep;
        for (int i = 0; i < keep; i++) {
            cumulative += p[i] / sum;
            if (cumulative >= topP) {
                nucleus = i + 1;
                break;
            }
        }
        double total = 0;
        for (int i = 0; i < nucleus; i++) {
            total += p[i];
        }
        double r = nextDouble() * total;
        for (int i = 0; i < nucleus; i++) {
            r -= p[i];
            if (r < 0) {
                return order[i];
            }
        }
        return order[nucleus - 1];
    }

    /** SplitMix64: uniform in [0, 1) from the top 53 bits. */
    double nextDouble() {
        state += 0x9E3779B97F4A7C15L;
        long z = state;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        z = z ^ (z >>> 31);
        return (z >>> 11) * 0x1.0p-53;
    }
}
