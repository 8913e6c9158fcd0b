import XCTest
@testable import BMSDK

/// Object detection against Python: tests/devices/detection_fixtures.py writes, for a tiny YOLO-style detector
/// (letterboxed input) and a tiny YOLOS, detection.json: scenes of several sizes with Pillow's resized pixels and the
/// letterboxed input Python fed (YOLO), the raw outputs and predict()'s detections under several options. Letterbox
/// must pad the resized pixels into the same input, pixel for pixel; Detections must give the same labels in the same
/// order, scores within 1e-6 and boxes within 1e-4 px. Fixtures/detection-* are committed copies.
final class DetectionTests: XCTestCase {
    func check(_ at: String, _ got: [Detections.Detection], _ expected: Any) {
        let want = expected as! [[String: Any]]
        XCTAssertEqual(got.count, want.count, "\(at) count")
        for (i, (g, d)) in zip(got, want).enumerated() {
            let box = d["box"] as! [String: NSNumber]
            XCTAssertEqual(g.label, d["label"] as? String, "\(at) detection \(i) label")
            XCTAssertEqual(g.score, (d["score"] as! NSNumber).doubleValue, accuracy: 1e-6, "\(at) detection \(i) score")
            for (value, key) in [(g.xmin, "xmin"), (g.ymin, "ymin"), (g.xmax, "xmax"), (g.ymax, "ymax")] {
                XCTAssertEqual(value, box[key]!.doubleValue, accuracy: 1e-4, "\(at) detection \(i) \(key)")
            }
        }
    }

    static func options(_ json: [String: Any]) -> Detections.Options {
        Detections.Options(threshold: (json["threshold"] as? NSNumber)?.doubleValue,
                           iouThreshold: (json["iou_threshold"] as? NSNumber)?.doubleValue ?? 0.7,
                           maxDetections: (json["max_detections"] as? Int) ?? 300)
    }

    static func floats(_ outputs: [String: Any], _ name: String) -> [Float] {
        VectorTests.flatten(outputs[name]!).map { Float($0) }
    }

    /// The detections of one recorded case's outputs, for an image of `size`, as BMSDKModel.detect decodes them.
    func decode(_ m: Manifest, _ outputs: [String: Any], size: [Int], _ o: Detections.Options) throws -> [Detections.Detection] {
        let first = Self.floats(outputs, m.postprocessing.output ?? "logits")
        if m.postprocessing.format == "detr" {
            let boxes = Self.floats(outputs, m.postprocessing.boxes ?? "pred_boxes")
            return try Detections.detr(logits: first, boxes: boxes, queries: boxes.count / 4, height: size[0], width: size[1],
                                       labels: m.postprocessing.labels, options: o)
        }
        let input = m.preprocessing.size!
        return try Detections.yolo(raw: first, anchors: first.count / (m.postprocessing.labels!.count + 4),
                                   modelHeight: input[0], modelWidth: input[1], height: size[0], width: size[1],
                                   labels: m.postprocessing.labels, options: o)
    }

    func testDetectionsMatchPredict() throws {
        var checked = 0
        for folder in try fixtureFolders(containing: "detection.json") {
            let m = try Manifest.load(folder: folder)
            for (i, c) in (try fixtureJSON(folder, "detection.json")["cases"] as! [[String: Any]]).enumerated() {
                for p in c["predictions"] as! [[String: Any]] {
                    let options = p["options"] as! [String: Any]
                    let got = try decode(m, c["outputs"] as! [String: Any], size: c["size"] as! [Int], Self.options(options))
                    check("\(folder.lastPathComponent) case \(i) \(options)", got, p["detections"]!)
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 0, "the committed detection fixtures have cases")
    }

    func testExportedVectorsMatch() throws {
        var checked = 0
        for folder in try fixtureFolders(containing: "detection.json") {
            let m = try Manifest.load(folder: folder)
            for (i, c) in (try fixtureJSON(folder, "vectors.json")["cases"] as! [[String: Any]]).enumerated() {
                // export-vectors: boxes in the input's pixels (the image is the model's size), default options
                let got = try decode(m, c["outputs"] as! [String: Any], size: m.preprocessing.size!, Detections.Options())
                check("\(folder.lastPathComponent) vectors case \(i)", got, c["prediction"]!)
                checked += 1
            }
        }
        if ProcessInfo.processInfo.environment["BMSDK_VECTORS_DIR"] != nil {  // the committed copies keep no cases
            XCTAssertGreaterThan(checked, 0)
        }
    }

    func testLetterboxPadsAsPython() throws {
        var checked = 0
        for folder in try fixtureFolders(containing: "detection.json") {
            let pre = try ImagePreprocessor(try Manifest.load(folder: folder).preprocessing)
            for c in try fixtureJSON(folder, "detection.json")["cases"] as! [[String: Any]] {
                guard let letterboxed = c["letterboxed"] else { continue }
                let size = c["size"] as! [Int]
                XCTAssertEqual(pre.resizedSize(height: size[0], width: size[1]), c["resized_size"] as! [Int], "\(size)")
                let box = Letterbox(height: pre.height, width: pre.width, imageHeight: size[0], imageWidth: size[1])
                let padded = try box.pad(VectorTests.flatten(c["resized"]!).map { UInt8($0) }, channels: pre.channels)
                XCTAssertEqual(padded, VectorTests.flatten(letterboxed).map { UInt8($0) }, "\(folder.lastPathComponent) \(size)")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 0)
    }

    func testDetectPadsRunsAndDecodes() throws {
        for folder in try fixtureFolders(containing: "detection.json") {
            let c = (try fixtureJSON(folder, "detection.json")["cases"] as! [[String: Any]])[1]
            let outputs = c["outputs"] as! [String: Any]
            let runner = RecordingRunner(outputs: outputs.mapValues { VectorTests.flatten($0).map { Float($0) } })
            let model = try BMSDKModel(folder: folder, runner: runner)
            let pre = try XCTUnwrap(model.image)
            let size = c["size"] as! [Int]
            let letterbox = c["letterboxed"] != nil
            let resized = letterbox ? VectorTests.flatten(c["resized"]!).map { UInt8($0) }
                : [UInt8](repeating: 0, count: pre.height * pre.width * pre.channels)
            let p = (c["predictions"] as! [[String: Any]])[2]
            let got = try model.detect(pixels: resized, height: size[0], width: size[1],
                                       options: Self.options(p["options"] as! [String: Any]))
            check("\(folder.lastPathComponent) detect", got, p["detections"]!)
            let fed = try XCTUnwrap(runner.feeds.values.first)
            XCTAssertEqual(fed.shape, [1, 3, pre.height, pre.width])
            if letterbox {
                let want = try pre.tensor(pixels: VectorTests.flatten(c["letterboxed"]!).map { UInt8($0) })
                XCTAssertEqual(fed.values, .float32(want))
            }
        }
    }

    func testNMSKeepsTheBestOfEachLabel() {
        let boxes: [[Double]] = [[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [20, 20, 30, 30]]
        let kept = Detections.nms(boxes: boxes, scores: [0.5, 0.9, 0.8, 0.9], labels: [0, 0, 1, 0], iouThreshold: 0.5)
        XCTAssertEqual(kept, [1, 3, 2])  // 0 overlaps 1 (IoU 0.68), same label; 2 is another label
    }
}

/// A runner that returns recorded outputs and keeps the feeds of its last call.
final class RecordingRunner: Runner {
    let outputs: [String: [Float]]
    var feeds: [String: Tensor] = [:]

    init(outputs: [String: [Float]]) { self.outputs = outputs }

    func run(_ feeds: [String: Tensor]) throws -> [String: [Float]] {
        self.feeds = feeds
        return outputs
    }
}
