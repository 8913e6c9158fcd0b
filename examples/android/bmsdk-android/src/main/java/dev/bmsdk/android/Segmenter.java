package dev.bmsdk.android;

/**
 * A semantic segmentation model over a bmsdk artifact: image pre-processing, one ModelRunner call (ImageCall), then
 * Segmentation at the size asked for.
 */
public final class Segmenter implements AutoCloseable {
    public final Manifest manifest;
    public final ImagePreprocessor images;
    private final ModelRunner runner;
    private final int labels;
    private final int h;
    private final int w;

    public Segmenter(Manifest manifest, ModelRunner runner) {
        if (!"semantic-segmentation".equals(manifest.task)) {
            throw new IllegalArgumentException("not a semantic-segmentation artifact: task " + manifest.task);
        }
        int[] shape = manifest.outputShapes.get(manifest.primaryOutput());
        if (shape == null || shape.length != 4 || shape[1] < 1 || shape[2] < 1 || shape[3] < 1) {
            throw new IllegalArgumentException("the output " + manifest.primaryOutput() + " is not [batch, labels, h, w] of fixed size");
        }
        this.manifest = manifest;
        this.runner = runner;
        this.images = new ImagePreprocessor(manifest.preprocessing);
        labels = shape[1];
        h = shape[2];
        w = shape[3];
    }

    /** The mask of one image (HxWxC pixels 0-255 at the model's size) at the model's input size. */
    public Segmentation.Result segment(int[] pixelsHwc) {
        return segment(pixelsHwc, images.height, images.width);
    }

    /** The mask at height x width: the image's size before the app resized it to the model's, as Python's predict(). */
    public Segmentation.Result segment(int[] pixelsHwc, int height, int width) {
        float[] logits = ImageCall.run(manifest, images, runner, images.apply(pixelsHwc)).get(manifest.primaryOutput());
        if (logits == null) {
            throw new IllegalStateException("the model returned no output " + manifest.primaryOutput());
        }
        if (logits.length != labels * h * w) {
            throw new IllegalStateException("the model returned " + logits.length + " logits, not " + labels + "x" + h + "x" + w);
        }
        return Segmentation.of(logits, h, w, height, width, manifest.labels);
    }

    @Override
    public void close() {
        runner.close();
    }
}
