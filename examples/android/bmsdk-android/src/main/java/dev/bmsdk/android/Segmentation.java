package dev.bmsdk.android;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Semantic segmentation post-processing as bmsdk's Python `predict()` does it: the logits [labels, h, w] of one image
 * upsampled to the size wanted (the image's own, or the model's input size) bilinearly with align_corners=False, as
 * torch's `interpolate`, in float32 and in the same order of operations as bmsdk's numpy code, so that the masks are
 * equal pixel for pixel; the label of each pixel is the first largest; then each present label's share of the
 * pixels, largest first (ties: lower label index first).
 */
public final class Segmentation {
    /** One image's result: mask[y * width + x] is a label index into `labels`. */
    public static final class Result {
        public final int height;
        public final int width;
        public final int[] mask;
        public final List<String> labels;
        public final Map<String, Double> fractions;

        Result(int height, int width, int[] mask, List<String> labels, Map<String, Double> fractions) {
            this.height = height;
            this.width = width;
            this.mask = mask;
            this.labels = labels;
            this.fractions = fractions;
        }
    }

    private Segmentation() {}

    /** `logits`: [labels, h, w] row-major (one image of the model's output); the mask is height x width. */
    public static Result of(float[] logits, int h, int w, int height, int width, List<String> labels) {
        int count = logits.length / (h * w);
        List<String> names = new ArrayList<>();
        for (int c = 0; c < count; c++) {
            names.add(labels.isEmpty() ? "LABEL_" + c : labels.get(c));
        }
        int[] mask = upsampleArgmax(logits, count, h, w, height, width);
        long[] counts = new long[count];
        for (int label : mask) {
            counts[label]++;
        }
        Map<String, Double> fractions = new LinkedHashMap<>();
        boolean[] done = new boolean[count];
        for (int k = 0; k < count; k++) {
            int best = -1;
            for (int c = 0; c < count; c++) {
                if (!done[c] && (best < 0 || counts[c] > counts[best])) {
                    best = c;
                }
            }
            done[best] = true;
            if (counts[best] > 0) {
                fractions.put(names.get(best), (double) counts[best] / mask.length);
            }
        }
        return new Result(height, width, mask, names, fractions);
    }

    /** The argmax over labels of the logits upsampled to height x width (mask[y * width + x]). */
    public static int[] upsampleArgmax(float[] logits, int labels, int h, int w, int height, int width) {
        Axis ys = new Axis(h, height);
        Axis xs = new Axis(w, width);
        int[] mask = new int[height * width];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                float best = Float.NEGATIVE_INFINITY;
                int label = 0;
                for (int c = 0; c < labels; c++) {
                    int plane = c * h * w;
                    int top = plane + ys.i0[y] * w;
                    int bottom = plane + ys.i1[y] * w;
                    float upper = xs.w0[x] * logits[top + xs.i0[x]] + xs.w1[x] * logits[top + xs.i1[x]];
                    float lower = xs.w0[x] * logits[bottom + xs.i0[x]] + xs.w1[x] * logits[bottom + xs.i1[x]];
                    float value = ys.w0[y] * upper + ys.w1[y] * lower;
                    if (value > best || c == 0) {  // the first largest wins, as numpy's argmax
                        best = value;
                        label = c;
                    }
                }
                mask[y * width + x] = label;
            }
        }
        return mask;
    }

    /**
     * Source indices and weights of each output position along one axis, as torch's upsample_bilinear2d
     * (align_corners=False, output size given): src = (dst + 0.5) * in / out - 0.5 in float32, clamped at 0; the far
     * index clamped at in - 1.
     */
    static final class Axis {
        final int[] i0;
        final int[] i1;
        final float[] w0;
        final float[] w1;

        Axis(int in, int out) {
            i0 = new int[out];
            i1 = new int[out];
            w0 = new float[out];
            w1 = new float[out];
            float scale = (float) ((double) in / out);
            for (int d = 0; d < out; d++) {
                float src = Math.max(((float) d + 0.5f) * scale - 0.5f, 0f);
                i0[d] = (int) src;
                i1[d] = Math.min(i0[d] + 1, in - 1);
                w1[d] = src - i0[d];
                w0[d] = 1f - w1[d];
            }
        }
    }
}
