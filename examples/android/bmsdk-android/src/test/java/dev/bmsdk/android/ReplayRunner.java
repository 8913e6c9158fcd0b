package dev.bmsdk.android;

import java.util.LinkedHashMap;
import java.util.Map;

/** A ModelRunner that keeps the inputs of its last call and returns one recorded float output. */
final class ReplayRunner implements ModelRunner {
    private final String output;
    private final float[] values;
    String signature;
    Map<String, TensorData> inputs;

    ReplayRunner(String output, float[] values) {
        this.output = output;
        this.values = values;
    }

    @Override
    public Map<String, TensorData> run(String signature, Map<String, TensorData> inputs) {
        this.signature = signature;
        this.inputs = inputs;
        Map<String, TensorData> out = new LinkedHashMap<>();
        out.put(output, TensorData.of(values));
        return out;
    }

    @Override
    public void close() {
    }
}
