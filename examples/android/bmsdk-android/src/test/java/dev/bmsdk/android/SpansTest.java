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
            TextTokenizer tokenizer = TextTokenizer.fromJson(VectorsTest.read(new File(folder, "tokenizer.json")), manifest.maxLength());
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

    @Test
    public void questionAnsweringGivesPythonsAnswers() {
        int windowsSeen = 0;
        int multiWindow = 0;
        for (File folder : folders("question-answering")) {
            Manifest manifest = new Manifest(VectorsTest.read(new File(folder, "bmsdk.json")));
            TextTokenizer tokenizer = TextTokenizer.fromJson(VectorsTest.read(new File(folder, "tokenizer.json")), manifest.maxLength());
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
