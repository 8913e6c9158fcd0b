package dev.bmsdk.android;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A tensor's values for one example in a signature's dtype: float32, int32, int8 or int64 (exactly one array is
 * set). `shape` is null where the signature fixes it; the generation step graph gives it (its T varies).
 */
public final class TensorData {
    public final String dtype;
    public final float[] floats;
    public final int[] ints;
    public final byte[] bytes;
    public final long[] longs;
    public final int[] shape;

    private TensorData(String dtype, float[] floats, int[] ints, byte[] bytes, long[] longs, int[] shape) {
        this.dtype = dtype;
        this.floats = floats;
        this.ints = ints;
        this.bytes = bytes;
        this.longs = longs;
        this.shape = shape;
    }

    public static TensorData of(float[] v) {
        return new TensorData("float32", v, null, null, null, null);
    }

    public static TensorData of(int[] v) {
        return new TensorData("int32", null, v, null, null, null);
    }

    public static TensorData of(byte[] v) {
        return new TensorData("int8", null, null, v, null, null);
    }

    public static TensorData of(float[] v, int... shape) {
        return new TensorData("float32", v, null, null, null, shape);
    }

    public static TensorData of(long[] v, int... shape) {
        return new TensorData("int64", null, null, null, v, shape);
    }

    /** Little-endian (native) direct buffer, what the LiteRT Interpreter reads. */
    public ByteBuffer toBuffer() {
        int n = floats != null ? floats.length * 4 : ints != null ? ints.length * 4
                : longs != null ? longs.length * 8 : bytes.length;
        ByteBuffer buffer = ByteBuffer.allocateDirect(n).order(ByteOrder.nativeOrder());
        if (floats != null) {
            buffer.asFloatBuffer().put(floats);
        } else if (longs != null) {
            buffer.asLongBuffer().put(longs);
        } else if (ints != null) {
            buffer.asIntBuffer().put(ints);
        } else {
            buffer.put(bytes);
        }
        buffer.rewind();
        return buffer;
    }

    /** Read a filled output buffer of the given dtype. */
    public static TensorData fromBuffer(ByteBuffer buffer, String dtype) {
        buffer.rewind();
        switch (dtype) {
            case "float32": {
                float[] v = new float[buffer.remaining() / 4];
                buffer.order(ByteOrder.nativeOrder()).asFloatBuffer().get(v);
                return of(v);
            }
            case "int32": {
                int[] v = new int[buffer.remaining() / 4];
                buffer.order(ByteOrder.nativeOrder()).asIntBuffer().get(v);
                return of(v);
            }
            case "int8": {
                byte[] v = new byte[buffer.remaining()];
                buffer.get(v);
                return of(v);
            }
            default:
                throw new IllegalArgumentException("unsupported dtype " + dtype);
        }
    }
}
