package dev.bmsdk.android;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.Test;

/**
 * The JVM core against what bmsdk's Python side writes: `bmsdk export-vectors` (texts/pixels, feeds, source
 * outputs, predictions), boundary cases (bucketed int32 and int8 inputs, dequantized outputs) computed with
 * bmsdk.runtimes.litert_io, and tokenizer cases. The folder comes from -Dbmsdk.vectors=DIR; each sub-folder holds
 * one artifact's bmsdk.json (+ tokenizer.json) and its JSON files.
 */
public class VectorsTest {
    static File root() {
        String dir = System.getProperty("bmsdk.vectors");
        assertTrue("pass -Dbmsdk.vectors=DIR (run-jvm-tests.sh does)", dir != null && new File(dir).isDirectory());
        return new File(dir);
    }

    private static List<File> folders(String withFile) {
        return folders(withFile, true);
    }

    static List<File> folders(String withFile, boolean required) {
        List<File> out = new ArrayList<>();
        File[] all = root().listFiles();
        if (all != null) {
            for (File f : all) {
                if (new File(f, withFile).isFile()) {
                    out.add(f);
                }
            }
        }
        assertFalse("no test folder has " + withFile + " under " + root(), required && out.isEmpty());
        return out;
    }

    static String read(File file) {
        try {
            return new String(Files.readAllBytes(file.toPath()), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
    }

    static Map<String, Object> json(File file) {
        return Json.object(Json.parse(read(file)));
    }

    static void flatten(Object value, List<Double> out) {
        if (value instanceof List) {
            for (Object v : (List<?>) value) {
                flatten(v, out);
            }
        } else {
            out.add(Json.number(value));
        }
    }

    static double[] numbers(Object nested) {
        List<Double> list = new ArrayList<>();
        flatten(nested, list);
        double[] out = new double[list.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = list.get(i);
        }
        return out;
    }

    static long[] longs(Object nested) {
        return Arrays.stream(numbers(nested)).mapToLong(d -> (long) d).toArray();
    }

    static int[] ints(Object nested) {
        return Arrays.stream(numbers(nested)).mapToInt(d -> (int) d).toArray();
    }

    static float[] floats(Object nested) {
        double[] d = numbers(nested);
        float[] out = new float[d.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) d[i];
        }
        return out;
    }

    static Classifier classifier(File folder) {
        Manifest m = new Manifest(read(new File(folder, "bmsdk.json")));
        File tok = new File(folder, "tokenizer.json");
        return new Classifier(m, tok.isFile() ? read(tok) : null, null);
    }

    @Test
    public void preprocessingAndPredictionsMatchExportedVectors() {
        int checked = 0;
        for (File folder : folders("vectors.json")) {
            if (GenerationTest.isGeneration(folder)) {
                continue;  // GenerationTest replays those
            }
            Manifest m = new Manifest(read(new File(folder, "bmsdk.json")));
            if ("audio".equals(m.preprocessing.get("kind")) || "semantic-segmentation".equals(m.task)
                    || "object-detection".equals(m.task)) {
                continue;  // AudioTest, SegmentationTest and DetectionTest check those
            }
            Map<String, Object> vectors = json(new File(folder, "vectors.json"));
            boolean text = "text".equals(m.preprocessing.get("kind"));
            TextTokenizer tok = text ? TextTokenizer.fromJson(read(new File(folder, "tokenizer.json")), m.maxLength()) : null;
            ImagePreprocessor pre = text ? null : new ImagePreprocessor(m.preprocessing);
            for (Object c : Json.array(vectors.get("cases"))) {
                Map<String, Object> kase = Json.object(c);
                Map<String, Object> feeds = Json.object(kase.get("feeds"));
                String where = folder.getName() + ": " + (text ? kase.get("text") : "image " + checked);
                if (text) {
                    Encoding enc = tok.encode((String) kase.get("text"));
                    assertArrayEquals(where, longs(feeds.get("input_ids")), enc.ids);
                    if (feeds.containsKey("attention_mask")) {
                        assertArrayEquals(where, longs(feeds.get("attention_mask")), enc.attentionMask);
                    }
                    if (feeds.containsKey("token_type_ids")) {
                        assertArrayEquals(where, longs(feeds.get("token_type_ids")), enc.typeIds);
                    }
                } else {
                    float[] got = pre.apply(ints(kase.get("pixels_hwc")));
                    assertArrayEquals(where, floats(feeds.get(m.inputNames.get(0))), got, 1e-5f);
                }
                float[] logits = floats(Json.object(kase.get("outputs")).get(m.primaryOutput()));
                Prediction p = Prediction.fromLogits(logits, m.labels);
                Map<String, Object> expected = Json.object(kase.get("prediction"));
                assertEquals(where, expected.get("label"), p.label);
                assertEquals(where, Json.number(expected.get("score")), p.score, 1e-6);
                checked++;
            }
        }
        assertTrue(checked > 0);
    }

    @Test
    public void imageGeometryMatchesPython() {
        int checked = 0;
        for (File folder : folders("vectors.json")) {
            Map<String, Object> vectors = json(new File(folder, "vectors.json"));
            if (vectors.get("geometry") == null) {
                continue;
            }
            ImagePreprocessor pre = new ImagePreprocessor(Json.object(vectors.get("preprocessing")));
            for (Object g : Json.array(vectors.get("geometry"))) {
                Map<String, Object> kase = Json.object(g);
                int[] image = ints(kase.get("image"));
                int[] resized = ints(kase.get("resized"));
                String where = folder.getName() + " " + Arrays.toString(image);
                assertArrayEquals(where, resized, pre.resizedSize(image[0], image[1]));
                assertArrayEquals(where, ints(kase.get("crop_origin")), pre.cropOrigin(resized[0], resized[1]));
                checked++;
            }
        }
        assertTrue("no folder has image geometry cases", checked > 0);
    }

    @Test
    public void boundaryConversionsMatchThePythonRuntime() {
        int checked = 0;
        for (File folder : folders("boundary.json")) {
            Classifier classifier = classifier(folder);
            for (Object c : Json.array(json(new File(folder, "boundary.json")).get("cases"))) {
                Map<String, Object> kase = Json.object(c);
                String kind = (String) kase.get("kind");
                String where = folder.getName() + " " + kind;
                if (kind.equals("dequantize")) {
                    Manifest.Signature sig = classifier.manifest.signatures.get((String) kase.get("signature"));
                    Manifest.Tensor t = sig.outputs.get((String) kase.get("output"));
                    byte[] raw = new byte[ints(kase.get("int8")).length];
                    int[] values = ints(kase.get("int8"));
                    for (int i = 0; i < raw.length; i++) {
                        raw[i] = (byte) values[i];
                    }
                    assertArrayEquals(where, floats(kase.get("expected")), Classifier.logits(t, TensorData.of(raw)), 0f);
                    checked++;
                    continue;
                }
                Map<String, TensorData> inputs = new LinkedHashMap<>();
                Manifest.Signature sig = kind.equals("text-inputs")
                        ? classifier.textInputs((String) kase.get("text"), inputs)
                        : classifier.imageInputs(ints(kase.get("pixels_hwc")), inputs);
                assertEquals(where, kase.get("signature"), sig.name);
                Map<String, Object> expected = Json.object(kase.get("inputs"));
                for (Map.Entry<String, Object> e : expected.entrySet()) {
                    Manifest.Tensor t = sig.inputs.get(e.getKey());
                    TensorData got = inputs.get(t.tensor);
                    assertEquals(where, t.dtype, got.dtype);
                    if (got.ints != null) {
                        assertArrayEquals(where + " " + e.getKey(), ints(e.getValue()), got.ints);
                    } else if (got.bytes != null) {
                        int[] want = ints(e.getValue());
                        for (int i = 0; i < want.length; i++) {
                            assertEquals(where + " " + e.getKey() + "[" + i + "]", want[i], got.bytes[i]);
                        }
                    } else {
                        assertArrayEquals(where + " " + e.getKey(), floats(e.getValue()), got.floats, 1e-5f);
                    }
                }
                checked++;
            }
        }
        assertTrue(checked > 0);
    }

    @Test
    public void tokenizerMatchesHuggingFaceOnRealVocabularies() {
        int checked = 0;
        for (File folder : folders("tokenizer-cases.json")) {
            Map<String, Object> cases = json(new File(folder, "tokenizer-cases.json"));
            TextTokenizer tok = TextTokenizer.fromJson(read(new File(folder, "tokenizer.json")),
                    (int) Json.number(cases.get("max_length")));
            for (Object c : Json.array(cases.get("cases"))) {
                Map<String, Object> kase = Json.object(c);
                String where = folder.getName() + ": " + kase.get("text");
                Encoding enc = tok.encode((String) kase.get("text"));
                assertArrayEquals(where, longs(kase.get("input_ids")), enc.ids);
                if (kase.containsKey("type_ids")) {
                    assertArrayEquals(where + " type ids", longs(kase.get("type_ids")), enc.typeIds);
                    assertArrayEquals(where + " mask", longs(kase.get("attention_mask")), enc.attentionMask);
                }
                checked++;
            }
        }
        assertTrue(checked > 0);
    }

    @Test
    public void tokenizerPartsOutsideTheLibraryAreRefusedAtLoad() {
        String unigram = "{\"model\": {\"type\": \"Unigram\", \"unk_id\": 0, \"vocab\": [[\"<unk>\", 0.0]]},";
        String[] refused = {
            unigram + " \"normalizer\": {\"type\": \"Nmt\"}}",
            unigram + " \"pre_tokenizer\": {\"type\": \"Digits\", \"individual_digits\": true}}",
            unigram + " \"post_processor\": {\"type\": \"Future\"}}",
            unigram + " \"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"single_word\": true}]}",
            "{\"model\": {\"type\": \"WordLevel\", \"vocab\": {}}}",
            unigram + " \"normalizer\": {\"type\": \"Precompiled\", \"precompiled_charsmap\": \"AAAA\"}}",
            "{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"<unk>\", 0.0]]}}",
        };
        for (String json : refused) {
            try {
                TextTokenizer.fromJson(json, 16);
                throw new AssertionError("accepted " + json);
            } catch (IllegalArgumentException expected) {
                assertFalse(expected.getMessage().isEmpty());
            }
        }
    }
}
