package dev.bmsdk.android;

import java.util.Arrays;
import java.util.List;

/**
 * The conversions between app values and one LiteRT signature that bmsdk.json records (the Python side's
 * `bmsdk.runtimes.litert_io`): the smallest sequence bucket that fits, padding, int64 -> int32, and int8
 * quantization with the tensor's scale and zero point (round half to even, as numpy).
 */
public final class Boundary {
    private Boundary() {
    }

    /** The smallest bucket holding `length` tokens. */
    public static int pickBucket(int length, List<Integer> buckets) {
        int best = Integer.MAX_VALUE;
        for (int b : buckets) {
            if (length <= b && b < best) {
                best = b;
            }
        }
        if (best == Integer.MAX_VALUE) {
            throw new IllegalArgumentException("a sequence of " + length + " tokens is longer than the largest bucket");
        }
        return best;
    }

    /** The signature name of a bucket, or the single signature of a model without buckets. */
    public static String signatureFor(Integer bucket) {
        return bucket == null ? "serving_default" : "seq_" + bucket;
    }

    /** Token values padded (or cut) to `length`, as int32 for the signature. */
    public static int[] padToInt32(long[] values, int length, long padValue) {
        int[] out = new int[length];
        Arrays.fill(out, (int) padValue);
        for (int i = 0; i < Math.min(length, values.length); i++) {
            if (values[i] < Integer.MIN_VALUE || values[i] > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("token value " + values[i] + " does not fit int32");
            }
            out[i] = (int) values[i];
        }
        return out;
    }

    public static byte[] quantize(float[] values, float scale, int zeroPoint) {
        byte[] out = new byte[values.length];
        for (int i = 0; i < values.length; i++) {
            double q = Math.rint(values[i] / scale) + zeroPoint;
            out[i] = (byte) Math.max(-128, Math.min(127, q));
        }
        return out;
    }

    public static float[] dequantize(byte[] values, float scale, int zeroPoint) {
        float[] out = new float[values.length];
        for (int i = 0; i < values.length; i++) {
            out[i] = ((float) values[i] - (float) zeroPoint) * scale;
        }
        return out;
    }
}
