package dev.bmsdk.android;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.Test;

/**
 * Object detection against Python: tests/devices/detection_fixtures.py writes, for a tiny YOLO-style detector
 * (letterboxed input) and a tiny YOLOS, detection.json: scenes of several sizes with Pillow's resized pixels and the
 * letterboxed input Python fed (YOLO), the raw outputs and predict()'s detections under several options. Letterbox
 * must pad the resized pixels into the same input, pixel for pixel; Detections must give the same labels in the same
 * order, scores within 1e-6 and boxes within 1e-4 px.
 */
public class DetectionTest {
    static void check(String where, List<Detections.Detection> got, Object expected) {
        List<Object> want = Json.array(expected);
        assertEquals(where + " count", want.size(), got.size());
        for (int i = 0; i < want.size(); i++) {
            Map<String, Object> d = Json.object(want.get(i));
            Map<String, Object> box = Json.object(d.get("box"));
            Detections.Detection g = got.get(i);
            String at = where + " detection " + i;
            assertEquals(at + " label", d.get("label"), g.label);
            assertEquals(at + " score", Json.number(d.get("score")), g.score, 1e-6);
            assertArrayEquals(at + " box", new double[] {Json.number(box.get("xmin")), Json.number(box.get("ymin")),
                    Json.number(box.get("xmax")), Json.number(box.get("ymax"))},
                    new double[] {g.xmin, g.ymin, g.xmax, g.ymax}, 1e-4);
        }
    }

    /** The detections of one recorded case's outputs under one options object, as Detector decodes them. */
    static List<Detections.Detection> decode(Manifest m, Map<String, Object> kase, Detections.Options o) {
        int[] size = VectorsTest.ints(kase.get("size"));
        Map<String, Object> outputs = Json.object(kase.get("outputs"));
        ImagePreprocessor pre = new ImagePreprocessor(m.preprocessing);
        float[] first = VectorsTest.floats(outputs.get(m.primaryOutput()));
        if ("detr".equals(m.postprocessing.get("format"))) {
            float[] boxes = VectorsTest.floats(outputs.get(m.postprocessing.get("boxes")));
            return Detections.detr(first, boxes, boxes.length / 4, size[0], size[1], m.labels, o);
        }
        int anchors = m.outputShapes.get(m.primaryOutput())[1];
        return Detections.yolo(first, anchors, pre.height, pre.width, size[0], size[1], true, m.labels, o);
    }

    @Test
    public void detectionsMatchPredict() {
        int checked = 0;
        for (File folder : VectorsTest.folders("detection.json", true)) {
            Manifest m = new Manifest(VectorsTest.read(new File(folder, "bmsdk.json")));
            int i = 0;
            for (Object c : Json.array(VectorsTest.json(new File(folder, "detection.json")).get("cases"))) {
                Map<String, Object> kase = Json.object(c);
                for (Object p : Json.array(kase.get("predictions"))) {
                    Map<String, Object> prediction = Json.object(p);
                    Map<String, Object> options = Json.object(prediction.get("options"));
                    String where = folder.getName() + " case " + i + " " + options;
                    check(where, decode(m, kase, Detections.Options.fromJson(options)), prediction.get("detections"));
                    checked++;
                }
                i++;
            }
        }
        assertTrue(checked > 0);
    }

    @Test
    public void exportedVectorsMatch() {
        int checked = 0;
        for (File folder : VectorsTest.folders("detection.json", true)) {
            Manifest m = new Manifest(VectorsTest.read(new File(folder, "bmsdk.json")));
            ImagePreprocessor pre = new ImagePreprocessor(m.preprocessing);
            int i = 0;
            for (Object c : Json.array(VectorsTest.json(new File(folder, "vectors.json")).get("cases"))) {
                Map<String, Object> kase = Json.object(c);
                String where = folder.getName() + " vectors case " + i++;
                float[] feeds = VectorsTest.floats(Json.object(kase.get("feeds")).get(m.inputNames.get(0)));
                assertArrayEquals(where, feeds, pre.apply(VectorsTest.ints(kase.get("pixels_hwc"))), 1e-5f);
                kase.put("size", List.of((double) pre.height, (double) pre.width));  // export-vectors: the input's pixels
                check(where, decode(m, kase, new Detections.Options()), kase.get("prediction"));
                checked++;
            }
        }
        assertTrue(checked > 0);
    }

    @Test
    public void letterboxPadsAsPython() {
        int checked = 0;
        for (File folder : VectorsTest.folders("detection.json", true)) {
            Manifest m = new Manifest(VectorsTest.read(new File(folder, "bmsdk.json")));
            ImagePreprocessor pre = new ImagePreprocessor(m.preprocessing);
            for (Object c : Json.array(VectorsTest.json(new File(folder, "detection.json")).get("cases"))) {
                Map<String, Object> kase = Json.object(c);
                if (kase.get("letterboxed") == null) {
                    continue;
                }
                int[] size = VectorsTest.ints(kase.get("size"));
                String where = folder.getName() + " " + Arrays.toString(size);
                assertArrayEquals(where, VectorsTest.ints(kase.get("resized_size")), pre.resizedSize(size[0], size[1]));
                Letterbox box = new Letterbox(pre.height, pre.width, size[0], size[1]);
                int[] padded = box.pad(VectorsTest.ints(kase.get("resized")), pre.channels, 114);
                assertArrayEquals(where, VectorsTest.ints(kase.get("letterboxed")), padded);
                checked++;
            }
        }
        assertTrue(checked > 0);
    }

    @Test
    public void detectorPadsRunsAndDecodes() {
        int checked = 0;
        for (File folder : VectorsTest.folders("detection.json", true)) {
            Manifest m = new Manifest(VectorsTest.read(new File(folder, "bmsdk.json")));
            Map<String, Object> kase = Json.object(Json.array(VectorsTest.json(new File(folder, "detection.json")).get("cases")).get(1));
            Map<String, Object> outputs = Json.object(kase.get("outputs"));
            Map<String, float[]> recorded = new LinkedHashMap<>();
            for (Map.Entry<String, Object> e : outputs.entrySet()) {
                recorded.put(e.getKey(), VectorsTest.floats(e.getValue()));
            }
            ReplayRunner runner = new ReplayRunner(recorded);
            Detector detector = new Detector(m, runner);
            int[] size = VectorsTest.ints(kase.get("size"));
            int[] resized = detector.letterboxed() ? VectorsTest.ints(kase.get("resized"))
                    : new int[detector.images.height * detector.images.width * detector.images.channels];
            Map<String, Object> last = Json.object(Json.array(kase.get("predictions")).get(2));
            List<Detections.Detection> got = detector.detect(resized, size[0], size[1],
                    Detections.Options.fromJson(Json.object(last.get("options"))));
            check(folder.getName() + " detector", got, last.get("detections"));
            TensorData fed = runner.inputs.get(m.inputNames.get(0));
            assertArrayEquals(new int[] {1, 3, detector.images.height, detector.images.width}, fed.shape);
            if (detector.letterboxed()) {
                float[] want = detector.images.apply(VectorsTest.ints(kase.get("letterboxed")));
                assertArrayEquals(want, fed.floats, 0f);
            }
            checked++;
        }
        assertTrue(checked > 0);
    }

    @Test
    public void nmsKeepsTheBestOfEachLabel() {
        List<double[]> boxes = List.of(new double[] {0, 0, 10, 10}, new double[] {1, 1, 11, 11},
                new double[] {0, 0, 10, 10}, new double[] {20, 20, 30, 30});
        int[] kept = Detections.nms(boxes, List.of(0.5, 0.9, 0.8, 0.9), List.of(0, 0, 1, 0), 0.5);
        assertArrayEquals(new int[] {1, 3, 2}, kept);  // 0 overlaps 1 (IoU 0.68), same label; 2 is another label
    }
}
