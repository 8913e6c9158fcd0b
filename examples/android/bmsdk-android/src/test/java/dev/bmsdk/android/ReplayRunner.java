package dev.bmsdk.android;

import java.util.LinkedHashMap;
import java.util.Map;

/** A ModelRunner that keeps the inputs of its last call and returns recorded float outputs. */
final class ReplayRunner implements ModelRunner {
    private final Map<String, float[]> outputs;
    String signature;
    Map<String, TensorData> inputs;

    ReplayRunner(String output, float[] values) {
        this(Map.of(output, values));
    }

    ReplayRunner(Map<String, float[]> outputs) {
        this.outputs = outputs;
    }

    @Override
    public Map<String, TensorData> run(String signature, Map<String, TensorData> inputs) {
        this.signature = signature;
        this.inputs = inputs;
        Map<String, TensorData> out = new LinkedHashMap<>();
        for (Map.Entry<String, float[]> e : outputs.entrySet()) {
            out.put(e.getKey(), TensorData.of(e.getValue()));
        }
        return out;
    }

    @Override
    public void close() {
    }
}
