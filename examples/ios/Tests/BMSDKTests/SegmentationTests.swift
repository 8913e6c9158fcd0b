import XCTest
@testable import BMSDK

/// Semantic segmentation against Python: tests/devices/segmentation_fixtures.py writes, for a tiny SegFormer, `bmsdk
/// export-vectors` output (model-size pixels, feeds, logits, the mask at the input size) and segmentation.json
/// (scenes of other sizes: logits, predict()'s mask at the image's size and label fractions). Image pre-processing
/// must give the feeds (1e-5); Segmentation upsamples the recorded logits and must give the same mask, pixel for
/// pixel, and the same fractions in the same order. Fixtures/segmentation-segformer is a committed copy.
final class SegmentationTests: XCTestCase {
    /// (h, w) of the model's logits [batch, labels, h, w], from the manifest.
    func logitsSize(_ m: Manifest) throws -> (Int, Int) {
        let name = m.postprocessing.output ?? m.outputs[0].name
        let spec = try XCTUnwrap(m.outputs.first { $0.name == name })
        guard case .fixed(let h) = spec.shape[2], case .fixed(let w) = spec.shape[3] else { throw BMSDKError.manifest("dynamic logits") }
        return (h, w)
    }

    func check(_ at: String, _ got: Segmentation.Result, mask: Any, fractions: [String: NSNumber], order: [String]) {
        let expected = VectorTests.flatten(mask).map { Int($0) }
        XCTAssertEqual(got.mask.count, expected.count, at)
        let differ = zip(got.mask, expected).filter { $0 != $1 }.count
        XCTAssertEqual(differ, 0, "\(at): \(differ) pixels differ")
        XCTAssertEqual(got.fractions.map(\.label), order, "\(at) order")
        for (label, fraction) in got.fractions {
            XCTAssertEqual(fraction, fractions[label]?.doubleValue ?? -1, accuracy: 1e-12, "\(at) \(label)")
        }
    }

    func testMasksAndFractionsMatchPredict() throws {
        var checked = 0
        for folder in try fixtureFolders(containing: "segmentation.json") {
            let m = try Manifest.load(folder: folder)
            let (h, w) = try logitsSize(m)
            for (i, c) in (try fixtureJSON(folder, "segmentation.json")["cases"] as! [[String: Any]]).enumerated() {
                let size = c["size"] as! [Int]
                let logits = VectorTests.flatten((c["outputs"] as! [String: Any])[m.postprocessing.output ?? "logits"]!).map { Float($0) }
                let got = Segmentation.of(logits: logits, h: h, w: w, height: size[0], width: size[1], labels: m.postprocessing.labels)
                check("\(folder.lastPathComponent) case \(i)", got, mask: c["mask"]!,
                      fractions: c["fractions"] as! [String: NSNumber], order: c["order"] as! [String])
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 0, "the committed segmentation-segformer fixture has cases")
    }

    func testExportedVectorsMatch() throws {
        var checked = 0
        for folder in try fixtureFolders(containing: "segmentation.json") {
            let model = try BMSDKModel(folder: folder, runner: NoRunner())
            let m = model.manifest, pre = try XCTUnwrap(model.image)
            let (h, w) = try logitsSize(m)
            for (i, c) in (try fixtureJSON(folder, "vectors.json")["cases"] as! [[String: Any]]).enumerated() {
                let at = "\(folder.lastPathComponent) vectors case \(i)"
                let pixels = VectorTests.flatten(c["pixels_hwc"]!).map { UInt8($0) }
                let feeds = VectorTests.flatten((c["feeds"] as! [String: Any])[m.inputs[0].name]!)
                let worst = zip(try pre.tensor(pixels: pixels), feeds).map { abs(Double($0) - $1) }.max() ?? 1
                XCTAssertLessThan(worst, 1e-5, at)
                let logits = VectorTests.flatten((c["outputs"] as! [String: Any])[m.postprocessing.output ?? "logits"]!).map { Float($0) }
                let got = Segmentation.of(logits: logits, h: h, w: w, height: pre.height, width: pre.width, labels: m.postprocessing.labels)
                let expected = c["prediction"] as! [String: Any]
                let fractions = expected["fractions"] as! [String: NSNumber]
                check(at, got, mask: expected["mask"]!, fractions: fractions, order: Self.largestFirst(fractions, m.postprocessing.labels!))
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 0)
    }

    /// The order of Python's fractions dict (JSONSerialization does not keep it): largest first, then label index.
    static func largestFirst(_ fractions: [String: NSNumber], _ labels: [String]) -> [String] {
        fractions.keys.sorted { a, b in
            let fa = fractions[a]!.doubleValue, fb = fractions[b]!.doubleValue
            return fa != fb ? fa > fb : labels.firstIndex(of: a)! < labels.firstIndex(of: b)!
        }
    }

    func testUpsamplingFollowsTorchAtTheEdges() {
        // logits 0 1 along x: 2 -> 8 columns, align_corners=False (torch clamps at both ends)
        let axis = Segmentation.Axis(input: 2, output: 8)
        let row: [Float] = [0, 1]
        let got = (0..<8).map { axis.w0[$0] * row[axis.i0[$0]] + axis.w1[$0] * row[axis.i1[$0]] }
        XCTAssertEqual(got, [0, 0, 0.125, 0.375, 0.625, 0.875, 1, 1])
    }

    func testSegmentRunsTheModelAndUpsamples() throws {
        let folder = try XCTUnwrap(try fixtureFolders(containing: "segmentation.json").first)
        let c = (try fixtureJSON(folder, "segmentation.json")["cases"] as! [[String: Any]])[0]
        let logits = VectorTests.flatten((c["outputs"] as! [String: Any])["logits"]!).map { Float($0) }
        let model = try BMSDKModel(folder: folder, runner: ReplayLogits(logits: logits))
        let pre = try XCTUnwrap(model.image)
        let size = c["size"] as! [Int]
        let got = try model.segment(pixels: [UInt8](repeating: 0, count: pre.height * pre.width * pre.channels),
                                    height: size[0], width: size[1])
        XCTAssertEqual(got.mask, VectorTests.flatten(c["mask"]!).map { Int($0) })
    }
}

/// A runner that returns recorded logits, whatever the feeds.
struct ReplayLogits: Runner {
    let logits: [Float]
    func run(_ feeds: [String: Tensor]) throws -> [String: [Float]] { ["logits": logits] }
}
