package dev.bmsdk.android;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.Test;

/**
 * Semantic segmentation against Python: tests/devices/segmentation_fixtures.py writes, for a tiny SegFormer, `bmsdk
 * export-vectors` output (model-size pixels, feeds, logits, the mask at the input size) and segmentation.json (scenes
 * of other sizes: logits, predict()'s mask at the image's size and label fractions). Image pre-processing must give
 * the feeds (1e-5); Segmentation upsamples the recorded logits and must give the same mask, pixel for pixel, and the
 * same fractions in the same order.
 */
public class SegmentationTest {
    /** {labels, h, w} of the model's logits, from bmsdk.json's output shape [batch, labels, h, w]. */
    private static int[] logitsShape(Manifest m) {
        int[] shape = m.outputShapes.get(m.primaryOutput());
        return new int[] {shape[1], shape[2], shape[3]};
    }

    private static void check(String where, Segmentation.Result got, Object mask, Map<String, Object> fractions, List<String> order) {
        assertArrayEquals(where + " mask", VectorsTest.ints(mask), got.mask);
        assertEquals(where + " order", order, new ArrayList<>(got.fractions.keySet()));
        for (Map.Entry<String, Object> e : fractions.entrySet()) {
            assertEquals(where + " " + e.getKey(), Json.number(e.getValue()), got.fractions.get(e.getKey()), 1e-12);
        }
    }

    @Test
    public void masksAndFractionsMatchPredict() {
        int checked = 0;
        for (File folder : VectorsTest.folders("segmentation.json", true)) {
            Manifest m = new Manifest(VectorsTest.read(new File(folder, "bmsdk.json")));
            int[] shape = logitsShape(m);
            int i = 0;
            for (Object c : Json.array(VectorsTest.json(new File(folder, "segmentation.json")).get("cases"))) {
                Map<String, Object> kase = Json.object(c);
                int[] size = VectorsTest.ints(kase.get("size"));
                float[] logits = VectorsTest.floats(Json.object(kase.get("outputs")).get(m.primaryOutput()));
                assertEquals(shape[0] * shape[1] * shape[2], logits.length);
                Segmentation.Result got = Segmentation.of(logits, shape[1], shape[2], size[0], size[1], m.labels);
                List<String> order = new ArrayList<>();
                for (Object label : Json.array(kase.get("order"))) {
                    order.add((String) label);
                }
                check(folder.getName() + " case " + i++, got, kase.get("mask"), Json.object(kase.get("fractions")), order);
                checked++;
            }
        }
        assertTrue(checked > 0);
    }

    @Test
    public void exportedVectorsMatch() {
        int checked = 0;
        for (File folder : VectorsTest.folders("segmentation.json", true)) {
            Manifest m = new Manifest(VectorsTest.read(new File(folder, "bmsdk.json")));
            int[] shape = logitsShape(m);
            ImagePreprocessor pre = new ImagePreprocessor(m.preprocessing);
            int i = 0;
            for (Object c : Json.array(VectorsTest.json(new File(folder, "vectors.json")).get("cases"))) {
                Map<String, Object> kase = Json.object(c);
                String where = folder.getName() + " vectors case " + i++;
                float[] feeds = VectorsTest.floats(Json.object(kase.get("feeds")).get(m.inputNames.get(0)));
                assertArrayEquals(where, feeds, pre.apply(VectorsTest.ints(kase.get("pixels_hwc"))), 1e-5f);
                float[] logits = VectorsTest.floats(Json.object(kase.get("outputs")).get(m.primaryOutput()));
                Segmentation.Result got = Segmentation.of(logits, shape[1], shape[2], pre.height, pre.width, m.labels);
                Map<String, Object> expected = Json.object(kase.get("prediction"));
                Map<String, Object> fractions = Json.object(expected.get("fractions"));
                check(where, got, expected.get("mask"), fractions, new ArrayList<>(fractions.keySet()));
                checked++;
            }
        }
        assertTrue(checked > 0);
    }

    @Test
    public void segmenterRunsTheModelAndUpsamples() {
        File folder = VectorsTest.folders("segmentation.json", true).get(0);
        Manifest m = new Manifest(VectorsTest.read(new File(folder, "bmsdk.json")));
        Map<String, Object> kase = Json.object(Json.array(VectorsTest.json(new File(folder, "segmentation.json")).get("cases")).get(0));
        ReplayRunner runner = new ReplayRunner(m.primaryOutput(), VectorsTest.floats(Json.object(kase.get("outputs")).get(m.primaryOutput())));
        Segmenter segmenter = new Segmenter(m, runner);
        int[] size = VectorsTest.ints(kase.get("size"));
        int[] pixels = new int[segmenter.images.height * segmenter.images.width * segmenter.images.channels];
        Segmentation.Result got = segmenter.segment(pixels, size[0], size[1]);
        assertArrayEquals(VectorsTest.ints(kase.get("mask")), got.mask);
        TensorData fed = runner.inputs.get(m.inputNames.get(0));
        assertArrayEquals(new int[] {1, 3, segmenter.images.height, segmenter.images.width}, fed.shape);
    }

    @Test
    public void upsamplingFollowsTorchAtTheEdges() {
        // one label, logits 0 1 2 3 along x: 2 -> 8 columns, align_corners=False (torch: clamped at both ends)
        float[] row = {0f, 1f};
        Segmentation.Axis axis = new Segmentation.Axis(2, 8);
        float[] got = new float[8];
        for (int x = 0; x < 8; x++) {
            got[x] = axis.w0[x] * row[axis.i0[x]] + axis.w1[x] * row[axis.i1[x]];
        }
        float[] torch = {0f, 0f, 0.125f, 0.375f, 0.625f, 0.875f, 1f, 1f};
        assertArrayEquals(torch, got, 0f);
    }
}
