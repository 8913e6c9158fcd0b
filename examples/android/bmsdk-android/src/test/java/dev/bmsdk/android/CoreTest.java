package dev.bmsdk.android;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertThrows;

import java.util.Arrays;
import java.util.List;
import java.util.Map;

import org.junit.Test;

/** Self-contained checks of the JVM core (no vectors needed). */
public class CoreTest {
    @Test
    public void jsonReadsNestingEscapesAndNumbers() {
        Map<String, Object> m = Json.object(Json.parse("{\"a\": [1, 2.5, -3e2, true, null], \"s\": \"x\\u00e9\\n\\\"\", \"o\": {}}"));
        List<Object> a = Json.array(m.get("a"));
        assertEquals(1L, a.get(0));
        assertEquals(2.5, Json.number(a.get(1)), 0);
        assertEquals(-300.0, Json.number(a.get(2)), 0);
        assertEquals(Boolean.TRUE, a.get(3));
        assertEquals(null, a.get(4));
        assertEquals("x\u00e9\n\"", m.get("s"));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("{\"a\": 1,}"));
        assertThrows(IllegalArgumentException.class, () -> Json.parse("[1] 2"));
    }

    @Test
    public void bucketsAndPadding() {
        List<Integer> buckets = Arrays.asList(16, 32, 64);
        assertEquals(16, Boundary.pickBucket(3, buckets));
        assertEquals(32, Boundary.pickBucket(17, buckets));
        assertEquals(64, Boundary.pickBucket(64, buckets));
        assertThrows(IllegalArgumentException.class, () -> Boundary.pickBucket(65, buckets));
        assertArrayEquals(new int[] {101, 7, 102, 0, 0}, Boundary.padToInt32(new long[] {101, 7, 102}, 5, 0));
        assertEquals("seq_32", Boundary.signatureFor(32));
        assertEquals("serving_default", Boundary.signatureFor(null));
    }

    @Test
    public void quantizationRoundsHalfToEvenAndSaturates() {
        byte[] q = Boundary.quantize(new float[] {0.25f, 0.75f, 100f, -100f, 0f}, 0.5f, 1);
        assertArrayEquals(new byte[] {1, 3, 127, -128, 1}, q);  // 0.5 -> 0 (+1), 1.5 -> 2 (+1)
        assertArrayEquals(new float[] {0f, 1f, 63f, -64.5f, 0f}, Boundary.dequantize(q, 0.5f, 1), 0f);
    }

    @Test
    public void predictionIsSoftmaxArgmax() {
        Prediction p = Prediction.fromLogits(new float[] {1f, 3f, 3f}, Arrays.asList("a", "b", "c"));
        assertEquals("b", p.label);  // the first of equal maxima, as numpy argmax
        assertEquals(1.0, p.scores.values().stream().mapToDouble(Double::doubleValue).sum(), 1e-6);
        assertEquals(Math.exp(2) / (1 + 2 * Math.exp(2)), p.score, 1e-6);
    }
}
