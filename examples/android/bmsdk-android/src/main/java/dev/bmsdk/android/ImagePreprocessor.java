package dev.bmsdk.android;

import java.util.List;
import java.util.Map;

/**
 * Image pre-processing as bmsdk's Python side does it, from the artifact's `preprocessing`: pixels (already
 * resized and centre-cropped to the model's size as its `resize` and `center_crop` say, HxWxC, 0-255) times
 * `scale`, plus `offset`, minus mean, over std, over `renormalize_std` when present, per channel; channels reversed
 * when `channel_order` is BGR; in NCHW or NHWC. The scale product in double, the rest in float32, as numpy does it.
 */
public final class ImagePreprocessor {
    public final int height;
    public final int width;
    public final int channels;
    public final boolean nchw;
    private final double scale;
    private final float offset;
    private final float[] mean;
    private final float[] std;
    private final float[] renormalizeStd;
    private final boolean bgr;
    private final Map<String, Object> resize;
    private final int[] crop;

    public ImagePreprocessor(Map<String, Object> config) {
        List<Object> size = Json.array(config.get("size"));
        height = (int) Json.number(size.get(0));
        width = (int) Json.number(size.get(1));
        channels = (int) Json.number(config.get("channels"));
        nchw = !"NHWC".equals(config.get("layout"));
        scale = Json.number(config.get("scale"));
        offset = config.get("offset") == null ? 0f : (float) Json.number(config.get("offset"));
        mean = floats(Json.array(config.get("mean")));
        std = floats(Json.array(config.get("std")));
        renormalizeStd = config.get("renormalize_std") == null ? null : floats(Json.array(config.get("renormalize_std")));
        bgr = "BGR".equals(config.get("channel_order"));
        resize = config.get("resize") == null ? null : Json.object(config.get("resize"));
        List<Object> cropSize = config.get("center_crop") == null ? null : Json.array(config.get("center_crop"));
        crop = cropSize == null ? null : new int[] {(int) Json.number(cropSize.get(0)), (int) Json.number(cropSize.get(1))};
    }

    /**
     * {height, width} to scale an image of imageHeight x imageWidth to before the centre crop, as the manifest's
     * `resize` says and transformers computes it (shortest edge: the long side truncated). The app scales with its
     * own filter (bmsdk uses Pillow's, `resize.resample`), then crops with {@link #cropOrigin}; a letterbox gives the
     * scaled size, before {@link Letterbox#pad}.
     */
    public int[] resizedSize(int imageHeight, int imageWidth) {
        if (resize == null) {  // a manifest of bmsdk 0.1: straight to the model's size
            return new int[] {height, width};
        }
        String mode = (String) resize.get("mode");
        if ("none".equals(mode)) {
            return new int[] {imageHeight, imageWidth};
        }
        if ("letterbox".equals(mode)) {  // the scaled image, before the padding (see Letterbox)
            Letterbox box = new Letterbox(height, width, imageHeight, imageWidth);
            return new int[] {box.resizedHeight, box.resizedWidth};
        }
        if ("exact".equals(mode)) {
            List<Object> size = Json.array(resize.get("size"));
            return new int[] {(int) Json.number(size.get(0)), (int) Json.number(size.get(1))};
        }
        int size = (int) Json.number(resize.get("size"));
        int shortSide = Math.min(imageHeight, imageWidth);
        int longSide = (int) ((double) size * Math.max(imageHeight, imageWidth) / shortSide);
        return imageWidth <= imageHeight ? new int[] {longSide, size} : new int[] {size, longSide};
    }

    /**
     * {top, left} of the model-size centre crop in an image of resizedHeight x resizedWidth (transformers'
     * `center_crop`); a negative value is that many rows/columns of zero padding. {0, 0} when there is no crop.
     */
    public int[] cropOrigin(int resizedHeight, int resizedWidth) {
        if (crop == null) {
            return new int[] {0, 0};
        }
        return new int[] {Math.floorDiv(resizedHeight - crop[0], 2), Math.floorDiv(resizedWidth - crop[1], 2)};
    }

    private static float[] floats(List<Object> values) {
        float[] out = new float[values.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) Json.number(values.get(i));
        }
        return out;
    }

    /** HxWxC pixels (row-major, 0-255) to the model's float input of one image, in its layout. */
    public float[] apply(int[] pixelsHwc) {
        if (pixelsHwc.length != height * width * channels) {
            throw new IllegalArgumentException("expected " + height + "x" + width + "x" + channels + " pixels, got " + pixelsHwc.length);
        }
        float[] out = new float[pixelsHwc.length];
        for (int y = 0; y < height; y++) {
            for (int x = 0; x < width; x++) {
                for (int c = 0; c < channels; c++) {
                    int from = bgr ? channels - 1 - c : c;  // BGR: output channel c is input channel 2 - c
                    float value = (float) (pixelsHwc[(y * width + x) * channels + from] * scale) + offset;
                    value = (value - mean[from]) / std[from];
                    if (renormalizeStd != null) {
                        value = value / renormalizeStd[from];
                    }
                    int index = nchw ? (c * height + y) * width + x : (y * width + x) * channels + c;
                    out[index] = value;
                }
            }
        }
        return out;
    }
}
