package dev.bmsdk.android;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** What the app needs from a TFLite artifact's bmsdk.json: task, labels, pre-processing and the signature record. */
public final class Manifest {
    /** One LiteRT tensor behind a manifest input or output: its name in the signature, dtype, and int8 parameters. */
    public static final class Tensor {
        public final String tensor;
        public final String dtype;
        public final int[] shape;
        public final boolean quantized;
        public final float scale;
        public final int zeroPoint;

        Tensor(Map<String, Object> d) {
            tensor = (String) d.get("tensor");
            dtype = (String) d.get("dtype");
            List<Object> dims = Json.array(d.get("shape"));
            shape = new int[dims.size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = (int) Json.number(dims.get(i));
            }
            Object q = d.get("quantization");
            quantized = q != null;
            scale = quantized ? (float) Json.number(Json.object(q).get("scale")) : 0f;
            zeroPoint = quantized ? (int) Json.number(Json.object(q).get("zero_point")) : 0;
        }
    }

    /** One signature: its name, its bucket length (text) or null, and its tensors by manifest name. */
    public static final class Signature {
        public final String name;
        public final Integer sequence;
        public final Map<String, Tensor> inputs = new LinkedHashMap<>();
        public final Map<String, Tensor> outputs = new LinkedHashMap<>();

        Signature(String name, Map<String, Object> d) {
            this.name = name;
            sequence = d.get("sequence") == null ? null : (int) Json.number(d.get("sequence"));
            for (Map.Entry<String, Object> e : Json.object(d.get("inputs")).entrySet()) {
                inputs.put(e.getKey(), new Tensor(Json.object(e.getValue())));
            }
            for (Map.Entry<String, Object> e : Json.object(d.get("outputs")).entrySet()) {
                outputs.put(e.getKey(), new Tensor(Json.object(e.getValue())));
            }
        }
    }

    public final String name;
    public final String task;
    public final String target;
    public final String precision;
    public final String modelFile;
    public final Map<String, Object> preprocessing;
    public final Map<String, Object> postprocessing;
    public final List<String> labels = new ArrayList<>();
    public final List<String> inputNames = new ArrayList<>();
    public final List<String> outputNames = new ArrayList<>();
    /** Each output's shape as bmsdk.json records it; a named (dynamic) dim is -1. */
    public final Map<String, int[]> outputShapes = new LinkedHashMap<>();
    public final Map<String, Signature> signatures = new LinkedHashMap<>();
    public final List<Integer> buckets = new ArrayList<>();
    public final Map<String, Long> padValues = new LinkedHashMap<>();

    public Manifest(String bmsdkJson) {
        Map<String, Object> root = Json.object(Json.parse(bmsdkJson));
        name = (String) root.get("name");
        task = (String) root.get("task");
        target = (String) root.get("target");
        precision = (String) root.get("precision");
        modelFile = (String) root.get("model_file");
        preprocessing = Json.object(root.get("preprocessing"));
        postprocessing = Json.object(root.get("postprocessing"));
        if (postprocessing.get("labels") != null) {
            for (Object label : Json.array(postprocessing.get("labels"))) {
                labels.add((String) label);
            }
        }
        for (Object spec : Json.array(root.get("inputs"))) {
            inputNames.add((String) Json.object(spec).get("name"));
        }
        for (Object spec : Json.array(root.get("outputs"))) {
            String output = (String) Json.object(spec).get("name");
            outputNames.add(output);
            List<Object> dims = Json.array(Json.object(spec).get("shape"));
            int[] shape = new int[dims.size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = dims.get(i) instanceof String ? -1 : (int) Json.number(dims.get(i));
            }
            outputShapes.put(output, shape);
        }
        if (!"tflite".equals(target)) {
            return;  // pre/post-processing still usable; no signatures to run
        }
        Map<String, Object> config = Json.object(root.get("target_config"));
        for (Map.Entry<String, Object> e : Json.object(config.get("signatures")).entrySet()) {
            signatures.put(e.getKey(), new Signature(e.getKey(), Json.object(e.getValue())));
        }
        for (Object b : Json.array(config.get("sequence_buckets"))) {
            buckets.add((int) Json.number(b));
        }
        for (Map.Entry<String, Object> e : Json.object(config.get("pad_values")).entrySet()) {
            padValues.put(e.getKey(), (long) Json.number(e.getValue()));
        }
    }

    public int maxLength() {
        return (int) Json.number(preprocessing.get("max_length"));
    }

    public String primaryOutput() {
        Object output = postprocessing.get("output");
        return output == null ? outputNames.get(0) : (String) output;
    }
}
