package dev.bmsdk.android;

import java.util.Map;

/** Runs one signature of a model on one example; LiteRtRunner (Android) implements it with the LiteRT Interpreter. */
public interface ModelRunner extends AutoCloseable {
    /** Inputs and outputs are keyed by the signature's tensor names (Manifest.Tensor.tensor). */
    Map<String, TensorData> run(String signature, Map<String, TensorData> inputs);

    @Override
    void close();
}
