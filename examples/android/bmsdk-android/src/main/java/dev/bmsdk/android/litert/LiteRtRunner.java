package dev.bmsdk.android.litert;

import dev.bmsdk.android.ModelRunner;
import dev.bmsdk.android.TensorData;

import org.tensorflow.lite.DataType;
import org.tensorflow.lite.Interpreter;
import org.tensorflow.lite.Tensor;

import java.io.File;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.Map;

/**
 * The Android-only part: one LiteRT Interpreter (XNNPACK on CPU) running a signature of a model.tflite.
 * Needs the LiteRT AAR (com.google.ai.edge.litert:litert), so it is compiled by Gradle only, not by the JVM tests.
 */
public final class LiteRtRunner implements ModelRunner {
    private final Interpreter interpreter;

    public LiteRtRunner(File modelFile, int threads) {
        Interpreter.Options options = new Interpreter.Options().setNumThreads(threads).setUseXNNPACK(true);
        interpreter = new Interpreter(modelFile, options);
    }

    @Override
    public synchronized Map<String, TensorData> run(String signature, Map<String, TensorData> inputs) {
        Map<String, Object> in = new HashMap<>();
        for (Map.Entry<String, TensorData> e : inputs.entrySet()) {
            in.put(e.getKey(), e.getValue().toBuffer());
        }
        Map<String, Object> out = new HashMap<>();
        Map<String, String> dtypes = new HashMap<>();
        for (String name : interpreter.getSignatureOutputs(signature)) {
            Tensor tensor = interpreter.getOutputTensorFromSignature(name, signature);
            out.put(name, ByteBuffer.allocateDirect(tensor.numBytes()).order(ByteOrder.nativeOrder()));
            dtypes.put(name, dtype(tensor.dataType()));
        }
        interpreter.runSignature(in, out, signature);
        Map<String, TensorData> result = new HashMap<>();
        for (Map.Entry<String, Object> e : out.entrySet()) {
            result.put(e.getKey(), TensorData.fromBuffer((ByteBuffer) e.getValue(), dtypes.get(e.getKey())));
        }
        return result;
    }

    private static String dtype(DataType type) {
        switch (type) {
            case FLOAT32: return "float32";
            case INT32: return "int32";
            case INT8: return "int8";
            default: throw new IllegalArgumentException("unsupported output type " + type);
        }
    }

    @Override
    public void close() {
        interpreter.close();
    }
}
