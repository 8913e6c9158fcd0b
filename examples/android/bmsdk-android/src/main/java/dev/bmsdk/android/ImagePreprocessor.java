package dev.bmsdk.android;

import java.util.List;
import java.util.Map;

/**
 * Image pre-processing as bmsdk's Python side does it, from the artifact's `preprocessing`: pixels (already
 * resized to the model's size, HxWxC, 0-255) times `scale`, minus mean, over std, per channel, in NCHW or NHWC.
 * All arithmetic in float32, as numpy does it.
 */
public final class ImagePreprocessor {
    public final int height;
    public final int width;
    public final int channels;
    public final boolean nchw;
    private final float scale;
    private final float[] mean;
    private final float[] std;

    public ImagePreprocessor(Map<String, Object> config) {
        List<Object> size = Json.array(config.get("size"));
        height = (int) Json.number(size.get(0));
        width = (int) Json.number(size.get(1));
        channels = (int) Json.number(config.get("channels"));
        nchw = !"NHWC".equals(config.get("layout"));
        scale = (float) Json.number(config.get("scale"));
        mean = floats(Json.array(config.get("mean")));
        std = floats(Json.array(config.get("std")));
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
                    float value = ((float) pixelsHwc[(y * width + x) * channels + c] * scale - mean[c]) / std[c];
                    int index = nchw ? (c * height + y) * width + x : (y * width + x) * channels + c;
                    out[index] = value;
                }
            }
        }
        return out;
    }
}
