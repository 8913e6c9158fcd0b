package dev.bmsdk.android;

/**
 * ultralytics' letterbox as bmsdk's Python side does it (image_ops.letterbox, object_detection.unletterbox): an
 * image of imageHeight x imageWidth is scaled by gain = min(height / imageHeight, width / imageWidth) to
 * round(imageWidth * gain) x round(imageHeight * gain) (Python's round: half to even), pasted on a height x width
 * canvas of the pad value at (round(dw - 0.1), round(dh - 0.1)), dw and dh half the padding; a box in the canvas'
 * pixels maps back to the image's by ultralytics' `scale_boxes`. The scaling itself is the app's (the platform's
 * bilinear filter; bmsdk's Python side uses Pillow's): {@link #pad} takes pixels already at resizedHeight x
 * resizedWidth.
 */
public final class Letterbox {
    public final int height;
    public final int width;
    public final int imageHeight;
    public final int imageWidth;
    public final double gain;
    public final int resizedHeight;
    public final int resizedWidth;
    public final int top;
    public final int left;

    /** The letterbox of an image of imageHeight x imageWidth onto the model's height x width. */
    public Letterbox(int height, int width, int imageHeight, int imageWidth) {
        if (imageHeight < 1 || imageWidth < 1) {
            throw new IllegalArgumentException("an image of " + imageHeight + "x" + imageWidth + " has no pixels");
        }
        this.height = height;
        this.width = width;
        this.imageHeight = imageHeight;
        this.imageWidth = imageWidth;
        gain = Math.min((double) height / imageHeight, (double) width / imageWidth);
        resizedWidth = (int) Math.rint(imageWidth * gain);
        resizedHeight = (int) Math.rint(imageHeight * gain);
        top = (int) Math.rint((height - resizedHeight) / 2.0 - 0.1);
        left = (int) Math.rint((width - resizedWidth) / 2.0 - 0.1);
    }

    /** The model's HxWxC input: `resizedHwc` (resizedHeight x resizedWidth x channels, 0-255) on the pad value. */
    public int[] pad(int[] resizedHwc, int channels, int padValue) {
        if (resizedHwc.length != resizedHeight * resizedWidth * channels) {
            throw new IllegalArgumentException("the letterbox takes " + resizedHeight + "x" + resizedWidth + "x" + channels
                    + " pixels, got " + resizedHwc.length + " values");
        }
        int[] canvas = new int[height * width * channels];
        java.util.Arrays.fill(canvas, padValue);
        for (int y = 0; y < resizedHeight; y++) {
            int row = y + top;
            if (row < 0 || row >= height) {
                continue;
            }
            for (int x = 0; x < resizedWidth; x++) {
                int col = x + left;
                if (col >= 0 && col < width) {
                    System.arraycopy(resizedHwc, (y * resizedWidth + x) * channels, canvas, (row * width + col) * channels, channels);
                }
            }
        }
        return canvas;
    }

    /**
     * A box (xmin, ymin, xmax, ymax) in the canvas' pixels in the image's, clipped to it (ultralytics' `scale_boxes`:
     * the padding taken from the unrounded scaled size).
     */
    public double[] toImage(double[] box) {
        double padX = Math.rint((width - imageWidth * gain) / 2 - 0.1);
        double padY = Math.rint((height - imageHeight * gain) / 2 - 0.1);
        return clip(new double[] {(box[0] - padX) / gain, (box[1] - padY) / gain, (box[2] - padX) / gain,
                (box[3] - padY) / gain}, imageHeight, imageWidth);
    }

    /** x clipped to [0, width], y to [0, height]. */
    static double[] clip(double[] box, int height, int width) {
        return new double[] {Math.min(Math.max(box[0], 0), width), Math.min(Math.max(box[1], 0), height),
                Math.min(Math.max(box[2], 0), width), Math.min(Math.max(box[3], 0), height)};
    }
}
