package dev.bmsdk.android;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A text, image or audio classifier over a TFLite bmsdk artifact: pre-processing, the boundary conversions recorded
 * in bmsdk.json, one signature call through a ModelRunner, then softmax and labels.
 */
public final class Classifier implements AutoCloseable {
    public final Manifest manifest;
    private final ModelRunner runner;
    private final TextTokenizer tokenizer;
    private final ImagePreprocessor images;
    private final AudioPreprocessor audio;

    /** `tokenizerJson` is the artifact's tokenizer/tokenizer.json for text models, null for image models. */
    public Classifier(Manifest manifest, String tokenizerJson, ModelRunner runner) {
        if (!manifest.task.endsWith("classification")) {
            throw new IllegalArgumentException("not a classifier: task " + manifest.task);
        }
        this.manifest = manifest;
        this.runner = runner;
        Object kind = manifest.preprocessing.get("kind");
        this.tokenizer = "text".equals(kind) ? TextTokenizer.fromJson(tokenizerJson, manifest.maxLength()) : null;
        this.images = "image".equals(kind) ? new ImagePreprocessor(manifest.preprocessing) : null;
        this.audio = "audio".equals(kind) ? new AudioPreprocessor(manifest.preprocessing, manifest.inputNames) : null;
    }

    /** The model inputs of one text, in the bucket's signature dtypes; returns the signature used. */
    public Manifest.Signature textInputs(String text, Map<String, TensorData> out) {
        Encoding enc = tokenizer.encode(text);
        Manifest.Signature sig = manifest.signatures.get(Boundary.signatureFor(Boundary.pickBucket(enc.ids.length, manifest.buckets)));
        Map<String, long[]> columns = new LinkedHashMap<>();
        columns.put("input_ids", enc.ids);
        columns.put("attention_mask", enc.attentionMask);
        columns.put("token_type_ids", enc.typeIds);
        for (Map.Entry<String, Manifest.Tensor> e : sig.inputs.entrySet()) {
            long pad = manifest.padValues.getOrDefault(e.getKey(), 0L);
            out.put(e.getValue().tensor, TensorData.of(Boundary.padToInt32(columns.get(e.getKey()), sig.sequence, pad)));
        }
        return sig;
    }

    /** The model input of one image (HxWxC pixels 0-255, already at the model's size). */
    public Manifest.Signature imageInputs(int[] pixelsHwc, Map<String, TensorData> out) {
        Manifest.Signature sig = manifest.signatures.get(Boundary.signatureFor(null));
        Map.Entry<String, Manifest.Tensor> input = sig.inputs.entrySet().iterator().next();
        Manifest.Tensor t = input.getValue();
        float[] values = images.apply(pixelsHwc);
        out.put(t.tensor, t.quantized ? TensorData.of(Boundary.quantize(values, t.scale, t.zeroPoint)) : TensorData.of(values));
        return sig;
    }

    /** The model inputs of one mono clip of float samples at `rate` Hz (the model's rate: resample first). */
    public Manifest.Signature audioInputs(float[] samples, int rate, Map<String, TensorData> out) {
        Manifest.Signature sig = manifest.signatures.get(Boundary.signatureFor(null));
        AudioPreprocessor.Features f = audio.apply(samples, rate);
        for (Map.Entry<String, Manifest.Tensor> e : sig.inputs.entrySet()) {
            Manifest.Tensor t = e.getValue();
            if (e.getKey().equals("attention_mask")) {
                out.put(t.tensor, TensorData.of(Boundary.padToInt32(f.attentionMask, audio.samples, 0)));
            } else {
                out.put(t.tensor, t.quantized ? TensorData.of(Boundary.quantize(f.inputValues, t.scale, t.zeroPoint)) : TensorData.of(f.inputValues));
            }
        }
        return sig;
    }

    /** Float logits from a signature's output: dequantized when the signature gives int8. */
    public static float[] logits(Manifest.Tensor t, TensorData value) {
        return t.quantized ? Boundary.dequantize(value.bytes, t.scale, t.zeroPoint) : value.floats;
    }

    public Prediction classifyText(String text) {
        Map<String, TensorData> inputs = new LinkedHashMap<>();
        return run(textInputs(text, inputs), inputs);
    }

    public Prediction classifyImage(int[] pixelsHwc) {
        Map<String, TensorData> inputs = new LinkedHashMap<>();
        return run(imageInputs(pixelsHwc, inputs), inputs);
    }

    public Prediction classifyAudio(float[] samples, int rate) {
        Map<String, TensorData> inputs = new LinkedHashMap<>();
        return run(audioInputs(samples, rate, inputs), inputs);
    }

    private Prediction run(Manifest.Signature sig, Map<String, TensorData> inputs) {
        Map<String, TensorData> outputs = runner.run(sig.name, inputs);
        Manifest.Tensor out = sig.outputs.get(manifest.primaryOutput());
        return Prediction.fromLogits(logits(out, outputs.get(out.tensor)), manifest.labels);
    }

    @Override
    public void close() {
        runner.close();
    }
}
