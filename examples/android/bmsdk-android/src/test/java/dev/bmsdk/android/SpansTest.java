package dev.bmsdk.android;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.Test;

/**
 * Token classification and question answering against Python's predict(): tests/devices/span_fixtures.py writes,
 * for tiny NER taggers and QA readers (BERT WordPiece, RoBERTa byte-level BPE), each input's windows (ids,
 * offsets, ...) with the model's raw outputs and what predict() returned. Here the Java tokenizer encodes the input
 * itself (must give the same windows), Entities / AnswerSpans post-process the recorded raw outputs, and the
 * entities and answers must be the same: labels, offsets, words, scores within 1e-4.
 */
public class SpansTest {
    private static final double TOLERANCE = 1e-4;

    private static List<File> folders(String task) {
        List<File> out = new ArrayList<>();
        for (File f : VectorsTest.folders("spans.json", true)) {
            if (task.equals(VectorsTest.json(new File(f, "spans.json")).get("task"))) {
                out.add(f);
            }
        }
        assertFalse("no spans.json of task " + task, out.isEmpty());
        return out;
    }

    /** tokenizer/tokenizer.json as in an artifact (older vector folders: tokenizer.json beside bmsdk.json). */
    private static File tokenizerFile(File folder) {
        File nested = new File(new File(folder, "tokenizer"), "tokenizer.json");
        return nested.isFile() ? nested : new File(folder, "tokenizer.json");
    }

    private static int[] ints(Object list) {
        List<Object> l = Json.array(list);
        int[] out = new int[l.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (int) Json.number(l.get(i));
        }
        return out;
    }

    private static long[] longs(Object list) {
        int[] v = ints(list);
        long[] out = new long[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = v[i];
        }
        return out;
    }

    private static float[] floats(Object list) {
        List<Object> l = Json.array(list);
        float[] out = new float[l.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) Json.number(l.get(i));
        }
        return out;
    }

    private static List<String> strings(Object list) {
        List<String> out = new ArrayList<>();
        for (Object o : Json.array(list)) {
            out.add((String) o);
        }
        return out;
    }

    /** The encoding must be the one Python made, field by field. */
    private static void checkWindow(String where, Map<String, Object> expected, SpanEncoding got) {
        assertArrayEquals(where + " ids", longs(expected.get("ids")), got.ids);
        assertArrayEquals(where + " type ids", longs(expected.get("type_ids")), got.typeIds);
        assertEquals(where + " tokens", strings(expected.get("tokens")), List.of(got.tokens));
        List<Object> offsets = Json.array(expected.get("offsets"));
        for (int i = 0; i < offsets.size(); i++) {
            assertArrayEquals(where + " offsets of token " + i, ints(offsets.get(i)), got.offsets[i]);
        }
        assertArrayEquals(where + " special", ints(expected.get("special")), got.special);
        assertArrayEquals(where + " sequence ids", ints(expected.get("sequence_ids")), got.sequenceIds);
        assertArrayEquals(where + " word ids", ints(expected.get("word_ids")), got.wordIds);
    }

    private static void checkEntities(String where, List<Object> expected, List<Entities.Entity> got) {
        assertEquals(where + ": " + got, expected.size(), got.size());
        for (int i = 0; i < got.size(); i++) {
            Map<String, Object> e = Json.object(expected.get(i));
            Entities.Entity g = got.get(i);
            String at = where + " entity " + i;
            boolean grouped = e.containsKey("entity_group");
            assertEquals(at + " grouped", grouped, g.grouped);
            assertEquals(at + " label", grouped ? e.get("entity_group") : e.get("entity"), g.label);
            assertEquals(at + " word", e.get("word"), g.word);
            assertEquals(at + " start", (int) Json.number(e.get("start")), g.start);
            assertEquals(at + " end", (int) Json.number(e.get("end")), g.end);
            assertEquals(at + " score", Json.number(e.get("score")), g.score, TOLERANCE);
            if (!grouped) {
                assertEquals(at + " index", (int) Json.number(e.get("index")), g.index);
            }
        }
    }

    @Test
    public void tokenClassificationGivesPythonsEntities() {
        int checked = 0;
        for (File folder : folders("token-classification")) {
            Manifest manifest = new Manifest(VectorsTest.read(new File(folder, "bmsdk.json")));
            TextTokenizer tokenizer = TextTokenizer.fromJson(VectorsTest.read(tokenizerFile(folder)), manifest.maxLength());
            List<String> ignore = strings(manifest.postprocessing.get("ignore_labels"));
            for (Object c : Json.array(VectorsTest.json(new File(folder, "spans.json")).get("cases"))) {
                Map<String, Object> item = Json.object(c);
                String text = (String) item.get("text");
                String where = folder.getName() + " '" + text + "'";
                List<Object> windows = Json.array(item.get("windows"));
                assertEquals(where, 1, windows.size());
                Map<String, Object> window = Json.object(windows.get(0));
                SpanEncoding enc = tokenizer.encodeWithOffsets(text);
                checkWindow(where, window, enc);
                List<Object> rows = Json.array(Json.object(window.get("outputs")).get(manifest.primaryOutput()));
                float[][] logits = new float[rows.size()][];
                for (int i = 0; i < logits.length; i++) {
                    logits[i] = floats(rows.get(i));
                }
                Map<String, Object> expected = Json.object(item.get("entities"));
                for (String strategy : Entities.STRATEGIES) {
                    List<Entities.Entity> got = Entities.of(text, enc, logits, manifest.labels, tokenizer, strategy, ignore);
                    checkEntities(where + " " + strategy, Json.array(expected.get(strategy)), got);
                    checked += got.size();
                }
                List<Entities.Entity> all = Entities.of(text, enc, logits, manifest.labels, tokenizer, "none", List.of());
                checkEntities(where + " none, ignore_labels []", Json.array(item.get("entities_all")), all);
                assertEquals(where, enc.ids.length - sum(enc.special), all.size());
            }
        }
        assertTrue("entities compared: " + checked, checked > 50);
    }

    private static int sum(int[] v) {
        int s = 0;
        for (int x : v) {
            s += x;
        }
        return s;
    }

    /** Replays each window's recorded outputs, found by its input ids. */
    private static ModelRunner replay(List<Object> cases) {
        Map<String, Map<String, TensorData>> recorded = new java.util.HashMap<>();
        for (Object c : cases) {
            for (Object w : Json.array(Json.object(c).get("windows"))) {
                Map<String, Object> window = Json.object(w);
                Map<String, TensorData> out = new java.util.HashMap<>();
                for (Map.Entry<String, Object> e : Json.object(window.get("outputs")).entrySet()) {
                    List<Float> values = new ArrayList<>();
                    for (Object v : Json.array(e.getValue())) {
                        if (v instanceof List) {
                            for (float f : floats(v)) {
                                values.add(f);
                            }
                        } else {
                            values.add((float) Json.number(v));
                        }
                    }
                    float[] flat = new float[values.size()];
                    for (int i = 0; i < flat.length; i++) {
                        flat[i] = values.get(i);
                    }
                    out.put(e.getKey(), TensorData.of(flat));
                }
                recorded.put(java.util.Arrays.toString(longs(window.get("ids"))), out);
            }
        }
        return new ModelRunner() {
            @Override
            public Map<String, TensorData> run(String signature, Map<String, TensorData> inputs) {
                TensorData ids = inputs.get("input_ids");
                assertArrayEquals(new int[] {1, ids.longs.length}, ids.shape);
                Map<String, TensorData> out = recorded.get(java.util.Arrays.toString(ids.longs));
                assertTrue("no recorded outputs for these input ids", out != null);
                return out;
            }

            @Override
            public void close() {
            }
        };
    }

    /** SpanModel end to end over the replayed outputs, with the manifest's defaults: predict()'s default results. */
    @Test
    public void spanModelPredictsEntitiesAndAnswers() {
        int checked = 0;
        List<File> all = new ArrayList<>(folders("token-classification"));
        all.addAll(folders("question-answering"));
        for (File folder : all) {
            Manifest manifest = new Manifest(VectorsTest.read(new File(folder, "bmsdk.json")));
            List<Object> cases = Json.array(VectorsTest.json(new File(folder, "spans.json")).get("cases"));
            try (SpanModel model = new SpanModel(manifest, VectorsTest.read(tokenizerFile(folder)), replay(cases))) {
                for (Object c : cases) {
                    Map<String, Object> item = Json.object(c);
                    if (item.containsKey("text")) {
                        String text = (String) item.get("text");
                        checkEntities(folder.getName() + " model '" + text + "'",
                                Json.array(Json.object(item.get("entities")).get("simple")), model.entities(text));
                    } else {
                        List<AnswerSpans.Answer> got = model.answers((String) item.get("question"), (String) item.get("context"));
                        Map<String, Object> run = Json.object(Json.array(item.get("answers")).get(0));
                        assertTrue(Json.object(run.get("options")).isEmpty());
                        Map<String, Object> e = Json.object(run.get("expected"));
                        assertEquals(1, got.size());
                        assertEquals(folder.getName() + " model " + item.get("question"), e.get("answer"), got.get(0).answer);
                        assertEquals((int) Json.number(e.get("start")), got.get(0).start);
                        assertEquals(Json.number(e.get("score")), got.get(0).score, TOLERANCE);
                    }
                    checked++;
                }
            }
        }
        assertTrue("inputs run: " + checked, checked > 30);
    }

    @Test
    public void questionAnsweringGivesPythonsAnswers() {
        int windowsSeen = 0;
        int multiWindow = 0;
        for (File folder : folders("question-answering")) {
            Manifest manifest = new Manifest(VectorsTest.read(new File(folder, "bmsdk.json")));
            TextTokenizer tokenizer = TextTokenizer.fromJson(VectorsTest.read(tokenizerFile(folder)), manifest.maxLength());
            int stride = (int) Json.number(manifest.preprocessing.get("stride"));
            for (Object c : Json.array(VectorsTest.json(new File(folder, "spans.json")).get("cases"))) {
                Map<String, Object> item = Json.object(c);
                String question = (String) item.get("question");
                String context = (String) item.get("context");
                String where = folder.getName() + " '" + question + "'";
                List<SpanEncoding> windows = tokenizer.encodePair(question, context, stride);
                List<Object> recorded = Json.array(item.get("windows"));
                assertEquals(where + " windows", recorded.size(), windows.size());
                List<float[]> starts = new ArrayList<>();
                List<float[]> ends = new ArrayList<>();
                for (int w = 0; w < windows.size(); w++) {
                    Map<String, Object> window = Json.object(recorded.get(w));
                    checkWindow(where + " window " + w, window, windows.get(w));
                    starts.add(floats(Json.object(window.get("outputs")).get("start_logits")));
                    ends.add(floats(Json.object(window.get("outputs")).get("end_logits")));
                }
                windowsSeen += windows.size();
                multiWindow += windows.size() > 1 ? 1 : 0;
                for (Object a : Json.array(item.get("answers"))) {
                    Map<String, Object> run = Json.object(a);
                    Map<String, Object> given = Json.object(run.get("options"));
                    AnswerSpans.Options options = AnswerSpans.Options.fromPostprocessing(manifest.postprocessing);
                    AnswerSpans.Options asked = AnswerSpans.Options.fromPostprocessing(given);
                    options.topK = given.containsKey("top_k") ? asked.topK : options.topK;
                    options.maxAnswerLen = given.containsKey("max_answer_len") ? asked.maxAnswerLen : options.maxAnswerLen;
                    options.handleImpossibleAnswer = given.containsKey("handle_impossible_answer") ? asked.handleImpossibleAnswer
                            : options.handleImpossibleAnswer;
                    options.alignToWords = given.containsKey("align_to_words") ? asked.alignToWords : options.alignToWords;
                    List<AnswerSpans.Answer> got = AnswerSpans.answers(context, windows, starts, ends, options);
                    Object exp = run.get("expected");
                    List<Object> expected = exp instanceof Map ? List.of(exp) : Json.array(exp);
                    String at = where + " " + given;
                    assertEquals(at + ": " + got, expected.size(), got.size());
                    for (int i = 0; i < got.size(); i++) {
                        Map<String, Object> e = Json.object(expected.get(i));
                        AnswerSpans.Answer g = got.get(i);
                        assertEquals(at + " answer " + i, e.get("answer"), g.answer);
                        assertEquals(at + " start " + i, (int) Json.number(e.get("start")), g.start);
                        assertEquals(at + " end " + i, (int) Json.number(e.get("end")), g.end);
                        assertEquals(at + " score " + i, Json.number(e.get("score")), g.score, TOLERANCE);
                    }
                }
            }
        }
        assertTrue("windows: " + windowsSeen, windowsSeen > 20);
        assertTrue("questions with several windows: " + multiWindow, multiWindow >= 4);
    }
}
