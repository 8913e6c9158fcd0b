package dev.bmsdk.android;

import java.util.List;
import java.util.Map;

/**
 * An object detector over a bmsdk artifact: the letterbox padding when the manifest's `resize` is a letterbox, image
 * pre-processing, one ModelRunner call, then Detections (DETR/YOLOS or YOLO-style, as `postprocessing.format` says)
 * with the boxes in the image's own pixels. A TFLite artifact's `serving_default` signature is used as Classifier
 * uses it (int8 input quantized, outputs dequantized); a manifest without signatures is fed one float tensor named by
 * its input.
 */
public final class Detector implements AutoCloseable {
    public final Manifest manifest;
    public final ImagePreprocessor images;
    public final String format;
    private final ModelRunner runner;
    private final Map<String, Object> resize;

    public Detector(Manifest manifest, ModelRunner runner) {
        if (!"object-detection".equals(manifest.task)) {
            throw new IllegalArgumentException("not an object-detection artifact: task " + manifest.task);
        }
        format = manifest.postprocessing.get("format") == null ? "yolo" : (String) manifest.postprocessing.get("format");
        if (!"yolo".equals(format) && !"detr".equals(format)) {
            throw new IllegalArgumentException("bmsdk.json names detection format " + format + ": this library reads detr, yolo");
        }
        this.manifest = manifest;
        this.runner = runner;
        this.images = new ImagePreprocessor(manifest.preprocessing);
        resize = manifest.preprocessing.get("resize") == null ? null : Json.object(manifest.preprocessing.get("resize"));
    }

    /** Whether the app's resized pixels go onto a letterbox canvas (resize mode `letterbox`). */
    public boolean letterboxed() {
        return resize != null && "letterbox".equals(resize.get("mode"));
    }

    /**
     * The detections of an image of height x width, given as the app resized it: to {@code
     * images.resizedSize(height, width)} (HxWxC, 0-255; for a letterbox the scaled image, padded here).
     */
    public List<Detections.Detection> detect(int[] resizedHwc, int height, int width, Detections.Options options) {
        int[] pixels = resizedHwc;
        if (letterboxed()) {
            int pad = resize.get("pad_value") == null ? 114 : (int) Json.number(resize.get("pad_value"));
            pixels = new Letterbox(images.height, images.width, height, width).pad(resizedHwc, images.channels, pad);
        }
        Map<String, float[]> outputs = ImageCall.run(manifest, images, runner, images.apply(pixels));
        if ("detr".equals(format)) {
            String boxes = manifest.postprocessing.get("boxes") == null ? "pred_boxes" : (String) manifest.postprocessing.get("boxes");
            float[] logits = outputs.get(manifest.primaryOutput());
            int queries = outputs.get(boxes).length / 4;
            return Detections.detr(logits, outputs.get(boxes), queries, height, width, manifest.labels, options);
        }
        float[] raw = outputs.get(manifest.primaryOutput());
        int[] shape = manifest.outputShapes.get(manifest.primaryOutput());  // [batch, anchors, 4 + labels]
        int anchors = raw.length / (shape != null && shape.length == 3 && shape[2] > 4 ? shape[2] : manifest.labels.size() + 4);
        boolean letterbox = !Boolean.FALSE.equals(manifest.postprocessing.get("letterbox"));
        return Detections.yolo(raw, anchors, images.height, images.width, height, width, letterbox, manifest.labels, options);
    }

    @Override
    public void close() {
        runner.close();
    }
}
