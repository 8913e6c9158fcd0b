package dev.bmsdk.android;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One pre-processed image through a ModelRunner, for the image tasks beyond classification (Segmenter, Detector): a
 * TFLite artifact's `serving_default` signature is used as Classifier uses it (int8 input quantized, outputs
 * dequantized); a manifest without signatures is fed one float tensor [1, C, H, W] or [1, H, W, C] named by its
 * input. Gives each output the runner returned as floats, by the manifest's output name.
 */
final class ImageCall {
    private ImageCall() {}

    static Map<String, float[]> run(Manifest manifest, ImagePreprocessor images, ModelRunner runner, float[] values) {
        Map<String, TensorData> inputs = new LinkedHashMap<>();
        Map<String, float[]> out = new LinkedHashMap<>();
        if (manifest.signatures.isEmpty()) {
            int[] shape = images.nchw ? new int[] {1, images.channels, images.height, images.width}
                    : new int[] {1, images.height, images.width, images.channels};
            inputs.put(manifest.inputNames.get(0), TensorData.of(values, shape));
            for (Map.Entry<String, TensorData> e : runner.run(Boundary.signatureFor(null), inputs).entrySet()) {
                out.put(e.getKey(), e.getValue().floats);
            }
            return out;
        }
        Manifest.Signature sig = manifest.signatures.get(Boundary.signatureFor(null));
        Manifest.Tensor in = sig.inputs.values().iterator().next();
        inputs.put(in.tensor, in.quantized ? TensorData.of(Boundary.quantize(values, in.scale, in.zeroPoint)) : TensorData.of(values));
        Map<String, TensorData> got = runner.run(sig.name, inputs);
        for (Map.Entry<String, Manifest.Tensor> e : sig.outputs.entrySet()) {
            TensorData value = got.get(e.getValue().tensor);
            if (value != null) {
                out.put(e.getKey(), Classifier.logits(e.getValue(), value));
            }
        }
        return out;
    }
}
