package dev.bmsdk.android;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertThrows;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.Test;

/**
 * The generator against text-generation vectors (bmsdk.tasks.generation_vectors: folders with vectors.json of
 * task text-generation and tokenizer.json), BPE against Hugging Face (folders with bpe-cases.json), streaming,
 * stop strings and a full cache. The folder comes from -Dbmsdk.vectors=DIR (tests/devices writes it).
 */
public class GenerationTest {
    static List<File> generationFolders() {
        List<File> out = new ArrayList<>();
        for (File f : VectorsTest.folders("vectors.json", false)) {
            if (isGeneration(f)) {
                out.add(f);
            }
        }
        assertFalse("no text-generation vectors under " + VectorsTest.root(), out.isEmpty());
        return out;
    }

    static boolean isGeneration(File folder) {
        return "text-generation".equals(VectorsTest.json(new File(folder, "vectors.json")).get("task"));
    }

    static BpeTokenizer tokenizer(File folder) {
        File flat = new File(folder, "tokenizer.json");
        return new BpeTokenizer(VectorsTest.read(flat.isFile() ? flat : new File(folder, "tokenizer/tokenizer.json")));
    }

    static GenerationSpec spec(File folder) {
        return GenerationSpec.fromJson(Json.object(VectorsTest.json(new File(folder, "vectors.json")).get("generation")));
    }

    static List<Map<String, Object>> cases(File folder) {
        List<Map<String, Object>> out = new ArrayList<>();
        for (Object c : Json.array(VectorsTest.json(new File(folder, "vectors.json")).get("cases"))) {
            out.add(Json.object(c));
        }
        return out;
    }

    static Generator.Options greedy(int maxNewTokens) {
        Generator.Options o = new Generator.Options();
        o.maxNewTokens = maxNewTokens;
        return o;
    }

    @Test
    public void generationReplaysTheVectors() {
        int checked = 0;
        for (File folder : generationFolders()) {
            BpeTokenizer tok = tokenizer(folder);
            GenerationSpec spec = spec(folder);
            for (Map<String, Object> kase : cases(folder)) {
                String prompt = (String) kase.get("prompt");
                String where = folder.getName() + ": " + prompt;
                assertArrayEquals(where + " prompt ids", VectorsTest.ints(kase.get("prompt_ids")), tok.encode(prompt));
                StepRunners.Replay replay = new StepRunners.Replay(spec, kase, where);
                StringBuilder streamed = new StringBuilder();
                int max = (int) Json.number(kase.get("max_new_tokens"));
                Generator.Result r = new Generator(spec, tok, replay).generate(prompt, greedy(max), streamed::append);
                assertArrayEquals(where + " tokens", VectorsTest.ints(kase.get("token_ids")), r.tokenIds);
                assertEquals(where + " text", kase.get("text"), r.text);
                assertEquals(where + " streamed", r.text, streamed.toString());
                assertTrue(where + ": fewer calls than recorded steps", replay.done());
                checked++;
            }
        }
        assertTrue(checked > 0);
    }

    @Test
    public void recordedLogitsPickTheRecordedTokens() {
        for (File folder : generationFolders()) {
            for (Map<String, Object> kase : cases(folder)) {
                for (Object s : Json.array(kase.get("steps"))) {
                    Map<String, Object> step = Json.object(s);
                    if (step.containsKey("logits") && step.get("token_id") != null) {
                        float[] row = VectorsTest.floats(step.get("logits"));
                        assertEquals((int) Json.number(step.get("token_id")), Sampler.greedy().sample(row, 0, row.length));
                    }
                }
            }
        }
    }

    @Test
    public void bpeEncodesAndDecodesAsHuggingFace() {
        int checked = 0;
        for (File folder : VectorsTest.folders("bpe-cases.json", true)) {
            BpeTokenizer tok = tokenizer(folder);
            for (Object c : Json.array(VectorsTest.json(new File(folder, "bpe-cases.json")).get("cases"))) {
                Map<String, Object> kase = Json.object(c);
                String where = folder.getName() + ": " + kase.get("text");
                int[] ids = VectorsTest.ints(kase.get("ids"));
                assertArrayEquals(where, ids, tok.encode((String) kase.get("text")));
                assertEquals(where, kase.get("decoded"), tok.decode(ids));
                assertEquals(where + " streamed", kase.get("decoded"), streamed(tok, ids));
                checked++;
            }
        }
        assertTrue(checked > 0);
    }

    static String streamed(BpeTokenizer tok, int[] ids) {
        TokenDecoder.Stream stream = tok.decoder.stream();
        StringBuilder out = new StringBuilder();
        for (int id : ids) {
            if (!tok.isSpecial(id)) {
                out.append(stream.feed(tok.token(id)));
            }
        }
        return out.append(stream.finish()).toString();
    }

    /** A byte-level tokenizer spells a rare emoji with several byte tokens: no chunk may hold half of it. */
    @Test
    public void streamingHoldsIncompleteCharacters() {
        File folder = generationFolders().get(0);
        BpeTokenizer tok = tokenizer(folder);
        GenerationSpec spec = spec(folder);
        String text = "café 🔥 naïve";
        int[] ids = tok.encode(text);
        int specials = tok.encode("").length;  // bos: the prompt; the script generates the text's tokens
        int[] script = java.util.Arrays.copyOfRange(ids, specials, ids.length);
        boolean split = false;
        for (int id : script) {
            split |= tok.decode(new int[] {id}).contains("\uFFFD");
        }
        assertTrue("a token should hold part of a character", split);
        List<String> chunks = new ArrayList<>();
        Generator.Result r = new Generator(spec, tok, new StepRunners.Scripted(spec, script))
                .generate(java.util.Arrays.copyOf(ids, specials), greedy(script.length), chunks::add);
        assertEquals(text, r.text);
        assertEquals(text, String.join("", chunks));
        for (String chunk : chunks) {
            assertFalse("chunk " + chunk + " holds a replacement character", chunk.contains("\uFFFD"));
        }
        Utf8Decoder d = new Utf8Decoder();
        assertEquals("", d.feed(new byte[] {(byte) 0xC3}));
        assertEquals("é", d.feed(new byte[] {(byte) 0xA9}));
        assertEquals("\uFFFDa\uFFFD\uFFFD", Utf8Decoder.decode(new byte[] {(byte) 0xE6, (byte) 0x97, 'a', (byte) 0xF0, (byte) 0x80}));
    }

    @Test
    public void stopStringsCutTheTextAndTheStream() {
        File folder = generationFolders().get(0);
        BpeTokenizer tok = tokenizer(folder);
        GenerationSpec spec = spec(folder);
        int[] ids = tok.encode("Once upon a time there was a model");
        int[] script = java.util.Arrays.copyOfRange(ids, 1, ids.length);
        Generator.Options o = greedy(50);
        o.stopStrings = List.of("there", "time t");
        StringBuilder streamed = new StringBuilder();
        Generator.Result r = new Generator(spec, tok, new StepRunners.Scripted(spec, script))
                .generate(new int[] {ids[0]}, o, streamed::append);
        assertEquals("Once upon a ", r.text);
        assertEquals("stop", r.stopReason);
        assertEquals(r.text, streamed.toString());
        assertTrue(r.tokenIds.length < script.length);
    }

    @Test
    public void eosStopsAndIsNotText() {
        File folder = generationFolders().get(0);
        BpeTokenizer tok = tokenizer(folder);
        GenerationSpec spec = spec(folder);
        int eos = spec.eosIds.get(0);
        int[] word = tok.encode("café");
        int[] script = {word[1], word[word.length - 1], eos, word[1]};
        Generator.Result r = new Generator(spec, tok, new StepRunners.Scripted(spec, script)).generate(new int[] {word[0]}, greedy(10), null);
        assertEquals("eos", r.stopReason);
        assertEquals(3, r.tokenIds.length);
        assertEquals(tok.decode(new int[] {word[1], word[word.length - 1]}), r.text);
    }

    @Test
    public void withoutLengthOneDecodeIsPaddedToo() {
        File folder = generationFolders().get(0);
        BpeTokenizer tok = tokenizer(folder);
        GenerationSpec s = spec(folder);
        GenerationSpec spec = new GenerationSpec(s.layers, s.kvHeads, s.headDim, s.cacheLength, s.vocabSize,
                List.of(4), s.eosIds, s.padId);
        int[] prompt = tok.encode("Once upon a time");  // longer than 4: chunked
        StepRunners.Scripted runner = new StepRunners.Scripted(spec, 70, 71, 72);
        Generator.Result r = new Generator(spec, tok, runner).generate(prompt, greedy(3), null);
        assertEquals((prompt.length + 3) / 4 + 2, runner.feeds.size());
        for (Map<String, TensorData> feeds : runner.feeds) {
            assertEquals(4, feeds.get("input_ids").longs.length);
        }
        Map<String, TensorData> decode = runner.feeds.get(runner.feeds.size() - 1);
        assertEquals(1, StepRunners.countOnes(decode.get("attention_mask").longs, spec.cacheLength, spec.cacheLength + 4));
        assertEquals(prompt.length + 1, decode.get("position_ids").longs[0]);
        assertEquals(3, r.tokenIds.length);
    }

    @Test
    public void aFullCacheIsRefusedOrSlid() {
        File folder = generationFolders().get(0);
        BpeTokenizer tok = tokenizer(folder);
        GenerationSpec spec = spec(folder).withCacheLength(6);
        int[] prompt = java.util.Arrays.copyOf(tok.encode("café au lait"), 3);
        int token = prompt[prompt.length - 1];
        Generator.Options refuse = greedy(10);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> new Generator(spec, tok, new StepRunners.Scripted(spec, token)).generate(prompt, refuse, null));
        assertTrue(e.getMessage(), e.getMessage().contains("cache length 6"));

        Generator.Options slide = greedy(10);
        slide.cachePolicy = Generator.CachePolicy.SLIDE;
        StepRunners.Scripted runner = new StepRunners.Scripted(spec, token);
        Generator.Result r = new Generator(spec, tok, runner).generate(prompt, slide, null);
        assertEquals(10, r.tokenIds.length);
        Map<String, TensorData> last = runner.feeds.get(runner.feeds.size() - 1);
        long position = last.get("position_ids").longs[0];
        assertEquals("positions keep increasing", prompt.length + 8, position);
        long[] mask = last.get("attention_mask").longs;
        assertEquals(5, StepRunners.countOnes(mask, 0, 6));  // the window: all but the new token's slot
        assertArrayEquals("the cache holds the latest positions", new long[] {position - 5, position - 4,
                position - 3, position - 2, position - 1}, StepRunners.slotPositions(spec, last, 5));
    }
}
