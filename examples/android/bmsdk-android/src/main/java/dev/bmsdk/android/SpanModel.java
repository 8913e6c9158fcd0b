package dev.bmsdk.android;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A token classifier (NER) or extractive question answerer over a bmsdk artifact: the tokenizer with character
 * offsets, one ModelRunner call per text or per window of a long context, then Entities or AnswerSpans with the
 * manifest's post-processing defaults. A TFLite artifact's signatures are used as Classifier uses them (bucket
 * choice, int32 padding, dequantized outputs); a manifest without signatures is fed int64 [1, tokens] tensors named
 * by its inputs through the `serving_default` signature.
 */
public final class SpanModel implements AutoCloseable {
    public final Manifest manifest;
    public final TextTokenizer tokenizer;
    private final ModelRunner runner;

    public SpanModel(Manifest manifest, String tokenizerJson, ModelRunner runner) {
        if (!"token-classification".equals(manifest.task) && !"question-answering".equals(manifest.task)) {
            throw new IllegalArgumentException("not a token-classification or question-answering artifact: task " + manifest.task);
        }
        this.manifest = manifest;
        this.runner = runner;
        this.tokenizer = TextTokenizer.fromJson(tokenizerJson, manifest.maxLength());
    }

    /** Entities of `text` with the manifest's aggregation_strategy and ignore_labels (defaults: simple, ["O"]). */
    public List<Entities.Entity> entities(String text) {
        Object strategy = manifest.postprocessing.get("aggregation_strategy");
        List<String> ignore = new ArrayList<>();
        Object labels = manifest.postprocessing.get("ignore_labels");
        if (labels == null) {
            ignore.add("O");
        } else {
            for (Object o : Json.array(labels)) {
                ignore.add((String) o);
            }
        }
        return entities(text, strategy == null ? "simple" : (String) strategy, ignore);
    }

    public List<Entities.Entity> entities(String text, String strategy, List<String> ignore) {
        SpanEncoding enc = tokenizer.encodeWithOffsets(text);
        float[] flat = run(enc).get(manifest.primaryOutput());
        int labels = manifest.labels.size();
        float[][] logits = new float[enc.ids.length][];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = java.util.Arrays.copyOfRange(flat, i * labels, (i + 1) * labels);
        }
        return Entities.of(text, enc, logits, manifest.labels, tokenizer, strategy, ignore);
    }

    /** The best answers to `question` in `context` with the manifest's options. */
    public List<AnswerSpans.Answer> answers(String question, String context) {
        return answers(question, context, AnswerSpans.Options.fromPostprocessing(manifest.postprocessing));
    }

    public List<AnswerSpans.Answer> answers(String question, String context, AnswerSpans.Options options) {
        Object stride = manifest.preprocessing.get("stride");
        List<SpanEncoding> windows = tokenizer.encodePair(question, context, stride == null ? 0 : (int) Json.number(stride));
        List<float[]> starts = new ArrayList<>();
        List<float[]> ends = new ArrayList<>();
        for (SpanEncoding w : windows) {
            Map<String, float[]> out = run(w);
            starts.add(out.get("start_logits"));
            ends.add(out.get("end_logits"));
        }
        return AnswerSpans.answers(context, windows, starts, ends, options);
    }

    /** One model call: float outputs by manifest output name. */
    private Map<String, float[]> run(SpanEncoding enc) {
        Map<String, long[]> columns = new LinkedHashMap<>();
        columns.put("input_ids", enc.ids);
        columns.put("attention_mask", enc.attentionMask);
        columns.put("token_type_ids", enc.typeIds);
        Map<String, TensorData> inputs = new LinkedHashMap<>();
        Map<String, float[]> out = new LinkedHashMap<>();
        if (manifest.signatures.isEmpty()) {
            for (String name : manifest.inputNames) {
                long[] column = columns.get(name);
                if (column == null) {
                    throw new IllegalArgumentException("unknown text input " + name);
                }
                inputs.put(name, TensorData.of(column, 1, column.length));
            }
            Map<String, TensorData> result = runner.run("serving_default", inputs);
            for (String name : manifest.outputNames) {
                TensorData t = result.get(name);
                if (t != null) {
                    out.put(name, t.floats);
                }
            }
            return out;
        }
        Manifest.Signature sig = manifest.signatures.get(Boundary.signatureFor(Boundary.pickBucket(enc.ids.length, manifest.buckets)));
        for (Map.Entry<String, Manifest.Tensor> e : sig.inputs.entrySet()) {
            long pad = manifest.padValues.getOrDefault(e.getKey(), 0L);
            inputs.put(e.getValue().tensor, TensorData.of(Boundary.padToInt32(columns.get(e.getKey()), sig.sequence, pad)));
        }
        Map<String, TensorData> result = runner.run(sig.name, inputs);
        for (Map.Entry<String, Manifest.Tensor> e : sig.outputs.entrySet()) {
            out.put(e.getKey(), Classifier.logits(e.getValue(), result.get(e.getValue().tensor)));
        }
        return out;
    }

    @Override
    public void close() {
        runner.close();
    }
}
