package dev.bmsdk.android;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.util.Map;

import org.junit.Test;

/**
 * Audio classification against Python: tests/devices/audio_fixtures.py writes, for a tiny wav2vec2 (no attention
 * mask) and HuBERT (attention mask), `bmsdk export-vectors` output (clips of the model's length) and audio.json
 * (shorter, longer, constant and silent clips), each with the feeds bmsdk's AudioPreprocessor made, the raw logits
 * and predict()'s result. Here AudioPreprocessor makes the feeds itself (within 1e-5, the mask exact) and the
 * prediction of the recorded logits must be Python's.
 */
public class AudioTest {
    private static final float TOLERANCE = 1e-5f;

    private static void check(String where, AudioPreprocessor pre, Map<String, Object> kase) {
        Map<String, Object> feeds = Json.object(kase.get("feeds"));
        int rate = kase.get("sampling_rate") == null ? pre.samplingRate : (int) Json.number(kase.get("sampling_rate"));
        AudioPreprocessor.Features got = pre.apply(VectorsTest.floats(kase.get("waveform")), rate);
        assertArrayEquals(where, VectorsTest.floats(feeds.get(pre.inputName)), got.inputValues, TOLERANCE);
        if (feeds.containsKey("attention_mask")) {
            assertArrayEquals(where + " mask", VectorsTest.longs(feeds.get("attention_mask")), got.attentionMask);
        } else {
            assertNull(where + " mask", got.attentionMask);
        }
    }

    private static void checkPrediction(String where, Manifest m, Map<String, Object> kase) {
        float[] logits = VectorsTest.floats(Json.object(kase.get("outputs")).get(m.primaryOutput()));
        Prediction p = Prediction.fromLogits(logits, m.labels);
        Map<String, Object> expected = Json.object(kase.get("prediction"));
        assertEquals(where, expected.get("label"), p.label);
        assertEquals(where, (int) Json.number(expected.get("index")), p.index);
        assertEquals(where, Json.number(expected.get("score")), p.score, 1e-6);
        for (Map.Entry<String, Object> e : Json.object(expected.get("scores")).entrySet()) {
            assertEquals(where + " " + e.getKey(), Json.number(e.getValue()), p.scores.get(e.getKey()), 1e-6);
        }
    }

    @Test
    public void preprocessingAndPredictionsMatchPython() {
        int checked = 0;
        boolean masked = false;
        for (File folder : VectorsTest.folders("audio.json", true)) {
            Manifest m = new Manifest(VectorsTest.read(new File(folder, "bmsdk.json")));
            AudioPreprocessor pre = new AudioPreprocessor(m.preprocessing, m.inputNames);
            masked |= pre.mask;
            for (String file : new String[] {"audio.json", "vectors.json"}) {
                int i = 0;
                for (Object c : Json.array(VectorsTest.json(new File(folder, file)).get("cases"))) {
                    String where = folder.getName() + " " + file + " case " + i++;
                    check(where, pre, Json.object(c));
                    checkPrediction(where, m, Json.object(c));
                    checked++;
                }
            }
        }
        assertTrue(checked > 0);
        assertTrue("no model with an attention mask among the audio vectors", masked);
    }

    /** bmsdk.json of an ONNX audio artifact given the signature record a TFLite one has (int32 mask, as LiteRT takes it). */
    private static Manifest asTflite(String bmsdkJson, Manifest onnx, int samples) {
        String mask = onnx.inputNames.contains("attention_mask")
                ? ", \"attention_mask\": {\"tensor\": \"mask:0\", \"dtype\": \"int32\", \"shape\": [1, " + samples + "]}" : "";
        String config = "\"target\": \"tflite\", \"target_config\": {\"signatures\": {\"serving_default\": {\"inputs\": "
                + "{\"input_values\": {\"tensor\": \"values:0\", \"dtype\": \"float32\", \"shape\": [1, " + samples + "]}" + mask
                + "}, \"outputs\": {\"logits\": {\"tensor\": \"out:0\", \"dtype\": \"float32\", \"shape\": [1, 4]}}}}, "
                + "\"sequence_buckets\": [], \"pad_values\": {}}";
        assertTrue(bmsdkJson.contains("\"target\": \"onnx\""));
        String renamed = bmsdkJson.replace("\"target_config\":", "\"onnx_target_config\":");  // its own, set aside
        return new Manifest(renamed.replace("\"target\": \"onnx\"", config));
    }

    @Test
    public void classifierFeedsTheSignatureAndClassifies() {
        for (File folder : VectorsTest.folders("audio.json", true)) {
            String text = VectorsTest.read(new File(folder, "bmsdk.json"));
            Manifest onnx = new Manifest(text);
            AudioPreprocessor pre = new AudioPreprocessor(onnx.preprocessing, onnx.inputNames);
            Manifest m = asTflite(text, onnx, pre.samples);
            Map<String, Object> kase = Json.object(Json.array(VectorsTest.json(new File(folder, "audio.json")).get("cases")).get(0));
            ReplayRunner runner = new ReplayRunner("out:0", VectorsTest.floats(Json.object(kase.get("outputs")).get("logits")));
            Prediction p = new Classifier(m, null, runner).classifyAudio(VectorsTest.floats(kase.get("waveform")), pre.samplingRate);
            String where = folder.getName();
            assertEquals(where, Json.object(kase.get("prediction")).get("label"), p.label);
            assertEquals(where, "serving_default", runner.signature);
            Map<String, Object> feeds = Json.object(kase.get("feeds"));
            assertArrayEquals(where, VectorsTest.floats(feeds.get("input_values")), runner.inputs.get("values:0").floats, TOLERANCE);
            if (pre.mask) {
                assertArrayEquals(where, VectorsTest.ints(feeds.get("attention_mask")), runner.inputs.get("mask:0").ints);
            }
        }
    }

    @Test
    public void anotherSamplingRateIsRefused() {
        File folder = VectorsTest.folders("audio.json", true).get(0);
        Manifest m = new Manifest(VectorsTest.read(new File(folder, "bmsdk.json")));
        AudioPreprocessor pre = new AudioPreprocessor(m.preprocessing, m.inputNames);
        try {
            pre.apply(new float[100], pre.samplingRate / 2);
            throw new AssertionError("accepted a clip at another rate");
        } catch (IllegalArgumentException expected) {
            assertTrue(expected.getMessage().contains("resample"));
        }
    }
}
