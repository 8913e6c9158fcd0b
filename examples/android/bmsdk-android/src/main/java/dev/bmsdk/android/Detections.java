package dev.bmsdk.android;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Object-detection post-processing as bmsdk's Python `predict()` does it (tasks/object_detection.py), for one image:
 * <ul>
 * <li>`detr` (DETR, YOLOS): logits [queries, labels + 1] softmaxed in float32, the last ("no object") class dropped,
 * each query's first best label kept when its probability is above the threshold; pred_boxes cx, cy, w, h normalised
 * to corners scaled by the image's own width and height (float32); best first (ties: query order).</li>
 * <li>`yolo`: an output [anchors, 4 + labels] (cx, cy, w, h in the input's pixels, then the class scores): each
 * anchor's first best score kept when above the threshold, corners in double, class-wise non-maximum suppression
 * (a box goes when its IoU with a better kept box of the same label is above iou_threshold), at most
 * max_detections, then mapped back through the letterbox ({@link Letterbox#toImage}) or the plain resize, clipped.</li>
 * </ul>
 * Scores are compared with the threshold in float32, as numpy compares a float32 array with a Python float.
 */
public final class Detections {
    public static final double DEFAULT_IOU = 0.7;
    public static final int MAX_DETECTIONS = 300;

    /** One detection: the label, its score and the box in the image's pixels, as Python's predict() gives it. */
    public static final class Detection {
        public final String label;
        public final int labelIndex;
        public final double score;
        public final double xmin;
        public final double ymin;
        public final double xmax;
        public final double ymax;

        Detection(String label, int labelIndex, double score, double[] box) {
            this.label = label;
            this.labelIndex = labelIndex;
            this.score = score;
            xmin = box[0];
            ymin = box[1];
            xmax = box[2];
            ymax = box[3];
        }
    }

    /** predict()'s options; a null threshold is the format's default (detr 0.5, yolo 0.25). */
    public static final class Options {
        public Double threshold;
        public double iouThreshold = DEFAULT_IOU;
        public int maxDetections = MAX_DETECTIONS;

        /** The options of a JSON object with Python's names (threshold, iou_threshold, max_detections). */
        public static Options fromJson(Map<String, Object> values) {
            Options o = new Options();
            if (values.get("threshold") != null) {
                o.threshold = Json.number(values.get("threshold"));
            }
            if (values.get("iou_threshold") != null) {
                o.iouThreshold = Json.number(values.get("iou_threshold"));
            }
            if (values.get("max_detections") != null) {
                o.maxDetections = (int) Json.number(values.get("max_detections"));
            }
            return o;
        }

        double threshold(String format) {
            double t = threshold != null ? threshold : "detr".equals(format) ? 0.5 : 0.25;
            check(t, "threshold");
            check(iouThreshold, "iou_threshold");
            if (maxDetections < 1) {
                throw new IllegalArgumentException("max_detections must be positive, got " + maxDetections);
            }
            return t;
        }

        private static void check(double value, String name) {
            if (!(value >= 0 && value <= 1)) {
                throw new IllegalArgumentException(name + " must be a number from 0 to 1, got " + value);
            }
        }
    }

    private Detections() {}

    /** DETR/YOLOS: logits [queries, classes] (the last: no object) and boxes [queries, 4], for an image of height x width. */
    public static List<Detection> detr(float[] logits, float[] boxes, int queries, int height, int width,
            List<String> labels, Options options) {
        double threshold = options.threshold("detr");
        int classes = logits.length / queries;
        List<Detection> found = new ArrayList<>();
        float w = width;
        float h = height;
        for (int q = 0; q < queries; q++) {
            float[] probs = Entities.softmax(Arrays.copyOfRange(logits, q * classes, (q + 1) * classes));
            int best = 0;
            for (int c = 1; c < classes - 1; c++) {
                if (probs[c] > probs[best]) {
                    best = c;
                }
            }
            if (probs[best] > (float) threshold) {
                float cx = boxes[q * 4];
                float cy = boxes[q * 4 + 1];
                float bw = boxes[q * 4 + 2];
                float bh = boxes[q * 4 + 3];
                double[] box = {(cx - 0.5f * bw) * w, (cy - 0.5f * bh) * h, (cx + 0.5f * bw) * w, (cy + 0.5f * bh) * h};
                found.add(new Detection(name(labels, best), best, probs[best], box));
            }
        }
        found.sort((a, b) -> Double.compare(b.score, a.score));  // stable: ties keep the query order
        return found.subList(0, Math.min(found.size(), options.maxDetections));
    }

    /**
     * A YOLO-style output [anchors, 4 + labels] of a modelHeight x modelWidth input, for an image of height x width
     * that was letterboxed (or, letterbox false, resized straight) to the input.
     */
    public static List<Detection> yolo(float[] raw, int anchors, int modelHeight, int modelWidth, int height, int width,
            boolean letterbox, List<String> labels, Options options) {
        double threshold = options.threshold("yolo");
        int stride = raw.length / anchors;
        List<double[]> boxes = new ArrayList<>();
        List<Double> scores = new ArrayList<>();
        List<Integer> classes = new ArrayList<>();
        for (int a = 0; a < anchors; a++) {
            int row = a * stride;
            int best = 4;
            for (int c = 5; c < stride; c++) {
                if (raw[row + c] > raw[row + best]) {
                    best = c;
                }
            }
            if (raw[row + best] > (float) threshold) {
                double cx = raw[row];
                double cy = raw[row + 1];
                double w = raw[row + 2];
                double h = raw[row + 3];
                boxes.add(new double[] {cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h});
                scores.add((double) raw[row + best]);
                classes.add(best - 4);
            }
        }
        int[] kept = nms(boxes, scores, classes, options.iouThreshold);
        Letterbox box = letterbox ? new Letterbox(modelHeight, modelWidth, height, width) : null;
        double sy = (double) height / modelHeight;
        double sx = (double) width / modelWidth;
        List<Detection> found = new ArrayList<>();
        for (int i = 0; i < Math.min(kept.length, options.maxDetections); i++) {
            double[] b = boxes.get(kept[i]);
            double[] mapped = box != null ? box.toImage(b)
                    : Letterbox.clip(new double[] {b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy}, height, width);
            found.add(new Detection(name(labels, classes.get(kept[i])), classes.get(kept[i]), scores.get(kept[i]), mapped));
        }
        return found;
    }

    /**
     * Class-wise non-maximum suppression (torchvision's batched_nms): the indices kept, best score first (ties: index
     * order); a box is dropped when its IoU with a better kept box of the same label is above iouThreshold.
     */
    public static int[] nms(List<double[]> boxes, List<Double> scores, List<Integer> labels, double iouThreshold) {
        Integer[] order = new Integer[boxes.size()];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Double.compare(scores.get(b), scores.get(a)));  // stable
        boolean[] suppressed = new boolean[order.length];
        int[] keep = new int[order.length];
        int kept = 0;
        for (int i = 0; i < order.length; i++) {
            if (suppressed[i]) {
                continue;
            }
            keep[kept++] = order[i];
            for (int j = 0; j < order.length; j++) {
                if (labels.get(order[i]).equals(labels.get(order[j])) && iou(boxes.get(order[i]), boxes.get(order[j])) > iouThreshold) {
                    suppressed[j] = true;
                }
            }
        }
        return Arrays.copyOf(keep, kept);
    }

    /** The IoU of two boxes (corners), 0 when their union is empty, as object_detection.iou_matrix. */
    public static double iou(double[] a, double[] b) {
        double inter = Math.max(Math.min(a[2], b[2]) - Math.max(a[0], b[0]), 0)
                * Math.max(Math.min(a[3], b[3]) - Math.max(a[1], b[1]), 0);
        double areaA = Math.max(a[2] - a[0], 0) * Math.max(a[3] - a[1], 0);
        double areaB = Math.max(b[2] - b[0], 0) * Math.max(b[3] - b[1], 0);
        double union = areaA + areaB - inter;
        return union > 0 ? inter / union : 0;
    }

    private static String name(List<String> labels, int index) {
        return labels.isEmpty() ? "LABEL_" + index : labels.get(index);
    }
}
