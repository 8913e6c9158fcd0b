package dev.bmsdk.android;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertThrows;

import org.junit.Test;

/** Sampling: greedy at temperature 0, top-k and top-p restrict the candidates, a seed fixes the draws. */
public class SamplerTest {
    private static final float[] LOGITS = {1f, 3f, 2f, 3f, 0f};

    private static int[] draws(Sampler s, float[] logits, int n) {
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = s.sample(logits, 0, logits.length);
        }
        return out;
    }

    @Test
    public void temperatureZeroIsArgmaxFirstOfTies() {
        assertEquals(1, Sampler.greedy().sample(LOGITS, 0, LOGITS.length));
        assertEquals(1, Sampler.greedy().sample(new float[] {9f, 9f, 0f, 5f, 1f}, 2, 3));  // a row at an offset
    }

    @Test
    public void topKAndTopPKeepOnlyTheLikeliest() {
        for (int t : draws(new Sampler(5f, 2, 1f, 7), LOGITS, 200)) {
            assertEquals(true, t == 1 || t == 3);
        }
        for (int t : draws(new Sampler(1f, 0, 0.01f, 7), LOGITS, 50)) {
            assertEquals(1, t);  // the nucleus is the single most likely token (the first of equal maxima)
        }
    }

    @Test
    public void aSeedFixesTheDrawsAndFrequenciesFollowSoftmax() {
        assertArrayEquals(draws(new Sampler(1f, 0, 1f, 42), LOGITS, 100), draws(new Sampler(1f, 0, 1f, 42), LOGITS, 100));
        assertNotEquals(java.util.Arrays.toString(draws(new Sampler(1f, 0, 1f, 1), LOGITS, 100)),
                java.util.Arrays.toString(draws(new Sampler(1f, 0, 1f, 2), LOGITS, 100)));
        int n = 20000;
        int[] counts = new int[LOGITS.length];
        for (int t : draws(new Sampler(1f, 0, 1f, 3), LOGITS, n)) {
            counts[t]++;
        }
        double z = 0;
        for (float l : LOGITS) {
            z += Math.exp(l);
        }
        for (int i = 0; i < LOGITS.length; i++) {
            assertEquals("token " + i, Math.exp(LOGITS[i]) / z, counts[i] / (double) n, 0.015);
        }
    }

    @Test
    public void invalidSettingsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> new Sampler(-1f, 0, 1f, 0));
        assertThrows(IllegalArgumentException.class, () -> new Sampler(1f, 0, 0f, 0));
    }
}
