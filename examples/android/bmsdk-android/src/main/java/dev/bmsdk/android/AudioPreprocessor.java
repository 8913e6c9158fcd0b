package dev.bmsdk.android;

import java.util.List;
import java.util.Map;

/**
 * Waveform pre-processing as bmsdk's Python side does it (transformers' Wav2Vec2FeatureExtractor), from the
 * artifact's `preprocessing` of kind "audio": mono float samples in [-1, 1] at the model's `sampling_rate`, trimmed or
 * padded with `padding_value` to `samples`, then (`do_normalize`) each clip brought to zero mean and unit variance
 * (1e-7 added to the variance) over its real samples when the model takes an attention mask, over the whole padded
 * clip when it does not. Decoding and resampling are the app's (MediaCodec, its own resampler): a clip at another
 * rate is refused.
 */
public final class AudioPreprocessor {
    static final float NORM_EPSILON = 1e-7f;

    /** The model inputs of one clip: `input_values` and, when the model takes one, its attention mask (else null). */
    public static final class Features {
        public final float[] inputValues;
        public final long[] attentionMask;

        Features(float[] inputValues, long[] attentionMask) {
            this.inputValues = inputValues;
            this.attentionMask = attentionMask;
        }
    }

    public final String inputName;
    public final int samplingRate;
    public final int samples;
    public final boolean mask;
    private final boolean doNormalize;
    private final float paddingValue;

    /** `inputNames`: the manifest's inputs (an attention mask is made only when the model takes one). */
    public AudioPreprocessor(Map<String, Object> config, List<String> inputNames) {
        if (!"audio".equals(config.get("kind"))) {
            throw new IllegalArgumentException("pre-processing of kind " + config.get("kind") + ", not audio");
        }
        inputName = config.get("input_name") == null ? "input_values" : (String) config.get("input_name");
        samplingRate = (int) Json.number(config.get("sampling_rate"));
        samples = (int) Json.number(config.get("samples"));
        doNormalize = !Boolean.FALSE.equals(config.get("do_normalize"));
        paddingValue = config.get("padding_value") == null ? 0f : (float) Json.number(config.get("padding_value"));
        mask = inputNames.contains("attention_mask") && !Boolean.FALSE.equals(config.get("attention_mask"));
    }

    /** One mono clip at `rate` Hz (must be the model's) to the model's inputs. */
    public Features apply(float[] clip, int rate) {
        if (rate != samplingRate) {
            throw new IllegalArgumentException("the audio is at " + rate + " Hz but the model takes " + samplingRate
                    + " Hz: resample it first (bmsdk's Python side uses scipy's resample_poly)");
        }
        if (clip.length == 0) {
            throw new IllegalArgumentException("the clip holds no samples");
        }
        int length = Math.min(clip.length, samples);
        float[] values = new float[samples];
        for (int i = 0; i < samples; i++) {
            values[i] = i < length ? clip[i] : paddingValue;
        }
        long[] attention = null;
        if (mask) {
            attention = new long[samples];
            for (int i = 0; i < length; i++) {
                attention[i] = 1;
            }
        }
        if (doNormalize) {
            normalize(values, mask ? length : samples);
        }
        return new Features(values, attention);
    }

    /** Zero mean, unit variance over values[0, real); with a mask the padding after `real` keeps padding_value. */
    private void normalize(float[] values, int real) {
        double sum = 0;
        for (int i = 0; i < real; i++) {
            sum += values[i];
        }
        float mean = (float) (sum / real);
        double squares = 0;
        for (int i = 0; i < real; i++) {
            float d = values[i] - mean;
            squares += (double) d * d;
        }
        float variance = (float) (squares / real);
        float std = (float) Math.sqrt(variance + NORM_EPSILON);
        for (int i = 0; i < values.length; i++) {
            values[i] = i < real ? (values[i] - mean) / std : paddingValue;
        }
    }
}
