package dev.bmsdk.android;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** ModelRunners for the generation tests: a replay of recorded vector steps and a scripted token sequence. */
final class StepRunners {
    private StepRunners() {
    }

    /** Presents whose every value is the absolute position of its token, so the cache shows what each slot holds. */
    static Map<String, TensorData> positionPresents(GenerationSpec spec, long[] positions) {
        int width = positions.length;
        Map<String, TensorData> out = new HashMap<>();
        for (int i = 0; i < spec.layers; i++) {
            float[] v = new float[spec.kvHeads * width * spec.headDim];
            for (int h = 0; h < spec.kvHeads; h++) {
                for (int t = 0; t < width; t++) {
                    Arrays.fill(v, (h * width + t) * spec.headDim, (h * width + t + 1) * spec.headDim, positions[t] + 0.5f * i);
                }
            }
            out.put("present_key_" + i, TensorData.of(v));
            out.put("present_value_" + i, TensorData.of(v.clone()));
        }
        return out;
    }

    /** The position held by each valid cache slot of layer 0 (head 0), read from the past_key_0 feed. */
    static long[] slotPositions(GenerationSpec spec, Map<String, TensorData> feeds, int valid) {
        float[] past = feeds.get("past_key_0").floats;
        long[] out = new long[valid];
        for (int s = 0; s < valid; s++) {
            out[s] = (long) past[s * spec.headDim];
        }
        return out;
    }

    static int countOnes(long[] mask, int from, int to) {
        int n = 0;
        for (int i = from; i < to; i++) {
            n += (int) mask[i];
        }
        return n;
    }

    /** Logits [1, width, V] with `row` at row `at` (zeros elsewhere). */
    static TensorData logits(int width, int vocab, int at, float[] row) {
        float[] v = new float[width * vocab];
        System.arraycopy(row, 0, v, at * vocab, vocab);
        return TensorData.of(v);
    }

    static float[] peaked(int vocab, Integer token) {
        float[] row = new float[vocab];
        if (token != null) {
            row[token] = 100f;
        }
        return row;
    }

    /**
     * Replays one vector case: checks each call's signature, input ids (real + pad), positions, attention mask
     * and that the cache slots hold what earlier calls returned; returns the recorded logits row (or a peak at the
     * recorded token where the vectors keep no logits).
     */
    static final class Replay implements ModelRunner {
        private final GenerationSpec spec;
        private final List<Map<String, Object>> steps = new ArrayList<>();
        private final String where;
        int calls;

        Replay(GenerationSpec spec, Map<String, Object> kase, String where) {
            this.spec = spec;
            this.where = where;
            for (Object s : Json.array(kase.get("steps"))) {
                steps.add(Json.object(s));
            }
        }

        boolean done() {
            return calls == steps.size();
        }

        @Override
        public Map<String, TensorData> run(String signature, Map<String, TensorData> feeds) {
            String at = where + " step " + calls;
            assertTrue(at + ": more calls than recorded steps", calls < steps.size());
            Map<String, Object> step = steps.get(calls++);
            long[] ids = VectorsTest.longs(step.get("input_ids"));
            long[] positions = VectorsTest.longs(step.get("position_ids"));
            int valid = (int) Json.number(step.get("valid"));
            int real = ids.length;
            int width = width(real);
            assertEquals(at, Boundary.signatureFor(spec.prefillLengths == null ? null : width), signature);
            long[] fedIds = feeds.get("input_ids").longs;
            assertEquals(at + " T", width, fedIds.length);
            assertArrayEquals(at + " input_ids", ids, Arrays.copyOf(fedIds, real));
            for (int i = real; i < width; i++) {
                assertEquals(at + " pad", spec.padId, fedIds[i]);
            }
            long[] fedPositions = feeds.get("position_ids").longs;
            assertArrayEquals(at + " position_ids", positions, Arrays.copyOf(fedPositions, real));
            long[] mask = feeds.get("attention_mask").longs;
            int c = spec.cacheLength;
            assertEquals(at + " mask length", c + width, mask.length);
            assertEquals(at + " valid slots", valid, countOnes(mask, 0, valid));
            assertEquals(at + " empty slots", 0, countOnes(mask, valid, c));
            assertEquals(at + " new tokens", real, countOnes(mask, c, c + real));
            assertEquals(at + " padding", 0, countOnes(mask, c + real, c + width));
            assertArrayEquals(at + " cache slots", range(0, valid), slotPositions(spec, feeds, valid));
            assertArrayEquals(at + " past shape", new int[] {1, spec.kvHeads, c, spec.headDim}, feeds.get("past_value_1").shape);
            Object token = step.get("token_id");
            float[] row = step.containsKey("logits") ? VectorsTest.floats(step.get("logits"))
                    : peaked(spec.vocabSize, token == null ? null : (int) Json.number(token));
            Map<String, TensorData> out = positionPresents(spec, fedPositions);
            out.put("logits", logits(width, spec.vocabSize, real - 1, row));
            return out;
        }

        private int width(int real) {
            if (spec.prefillLengths == null) {
                return real;
            }
            return spec.prefillLengths.stream().filter(t -> t >= real).findFirst().orElseThrow();
        }

        private static long[] range(long from, long to) {
            long[] out = new long[(int) (to - from)];
            for (int i = 0; i < out.length; i++) {
                out[i] = from + i;
            }
            return out;
        }

        @Override
        public void close() {
        }
    }

    /** Emits `script` one token per call (whatever the input) and keeps a copy of every call's feeds. */
    static final class Scripted implements ModelRunner {
        private final GenerationSpec spec;
        private final int[] script;
        final List<Map<String, TensorData>> feeds = new ArrayList<>();

        Scripted(GenerationSpec spec, int... script) {
            this.spec = spec;
            this.script = script;
        }

        @Override
        public Map<String, TensorData> run(String signature, Map<String, TensorData> in) {
            Map<String, TensorData> copy = new HashMap<>();
            in.forEach((k, v) -> copy.put(k, v.floats != null ? TensorData.of(v.floats.clone(), v.shape) : v));
            feeds.add(copy);
            long[] positions = in.get("position_ids").longs;
            int real = countOnes(in.get("attention_mask").longs, spec.cacheLength, spec.cacheLength + positions.length);
            int token = script[Math.min(feeds.size() - 1, script.length - 1)];
            Map<String, TensorData> out = positionPresents(spec, positions);
            out.put("logits", logits(positions.length, spec.vocabSize, real - 1, peaked(spec.vocabSize, token)));
            return out;
        }

        @Override
        public void close() {
        }
    }
}
