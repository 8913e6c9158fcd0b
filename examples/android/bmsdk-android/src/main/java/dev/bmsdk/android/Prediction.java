package dev.bmsdk.android;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** A class prediction: the label, its index and score, and every label's softmax score. */
public final class Prediction {
    public final String label;
    public final int index;
    public final double score;
    public final Map<String, Double> scores;

    private Prediction(String label, int index, double score, Map<String, Double> scores) {
        this.label = label;
        this.index = index;
        this.score = score;
        this.scores = scores;
    }

    /** Softmax (in double, max subtracted) and argmax, as bmsdk's Python `classify`. */
    public static Prediction fromLogits(float[] logits, List<String> labels) {
        double max = Double.NEGATIVE_INFINITY;
        for (float v : logits) {
            max = Math.max(max, v);
        }
        double[] e = new double[logits.length];
        double sum = 0;
        for (int i = 0; i < logits.length; i++) {
            e[i] = Math.exp(logits[i] - max);
            sum += e[i];
        }
        int best = 0;
        Map<String, Double> scores = new LinkedHashMap<>();
        for (int i = 0; i < logits.length; i++) {
            double p = (float) (e[i] / sum);  // Python returns float32 probabilities
            scores.put(name(labels, i), p);
            if (e[i] > e[best]) {
                best = i;
            }
        }
        return new Prediction(name(labels, best), best, scores.get(name(labels, best)), scores);
    }

    private static String name(List<String> labels, int i) {
        return labels.isEmpty() ? Integer.toString(i) : labels.get(i);
    }

    @Override
    public String toString() {
        return String.format("%s (%.3f)", label, score);
    }
}
