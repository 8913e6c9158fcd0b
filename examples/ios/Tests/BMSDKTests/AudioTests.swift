import XCTest
@testable import BMSDK

/// Audio classification against Python: tests/devices/audio_fixtures.py writes, for a tiny wav2vec2 (no attention
/// mask) and HuBERT (attention mask), `bmsdk export-vectors` output (clips of the model's length) and audio.json
/// (shorter, longer, constant and silent clips), each with the feeds bmsdk's AudioPreprocessor made, the raw logits
/// and predict()'s result. AudioPreprocessor makes the feeds itself (within 1e-5, the mask exact) and the prediction
/// of the recorded logits must be Python's. Fixtures/audio-hubert is a committed copy; the wav2vec2 folder comes
/// with BMSDK_VECTORS_DIR.
final class AudioTests: XCTestCase {
    static let tolerance: Float = 1e-5

    func check(_ at: String, _ pre: AudioPreprocessor, _ c: [String: Any]) throws {
        let feeds = c["feeds"] as! [String: Any]
        let wave = VectorTests.flatten(c["waveform"]!).map { Float($0) }
        let got = try pre.features(samples: wave, rate: c["sampling_rate"] as? Int ?? pre.samplingRate)
        let expected = VectorTests.flatten(feeds[pre.inputName]!).map { Float($0) }
        XCTAssertEqual(got.inputValues.count, expected.count, at)
        let worst = zip(got.inputValues, expected).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, Self.tolerance, "\(at) input_values")
        XCTAssertEqual(got.attentionMask, (feeds["attention_mask"] as? [Int]), "\(at) attention mask")
    }

    func checkPrediction(_ at: String, _ m: Manifest, _ c: [String: Any]) {
        let output = m.postprocessing.output ?? m.outputs[0].name
        let logits = VectorTests.flatten((c["outputs"] as! [String: Any])[output]!).map { Float($0) }
        let got = Postprocessor.classify(logits: logits, labels: m.postprocessing.labels)
        let expected = c["prediction"] as! [String: Any]
        XCTAssertEqual(got.label, expected["label"] as? String, at)
        XCTAssertEqual(got.index, expected["index"] as? Int, at)
        XCTAssertEqual(Double(got.score), (expected["score"] as! NSNumber).doubleValue, accuracy: 1e-6, at)
        for (label, score) in expected["scores"] as! [String: NSNumber] {
            XCTAssertEqual(Double(got.scores[label] ?? -1), score.doubleValue, accuracy: 1e-6, "\(at) \(label)")
        }
    }

    func testPreprocessingAndPredictionsMatchPython() throws {
        var checked = 0, masked = false
        for folder in try fixtureFolders(containing: "audio.json") {
            let manifest = try Manifest.load(folder: folder)
            let pre = try AudioPreprocessor(manifest.preprocessing, inputs: manifest.inputs)
            masked = masked || pre.mask
            for file in ["audio.json", "vectors.json"] {
                for (i, c) in (try fixtureJSON(folder, file)["cases"] as! [[String: Any]]).enumerated() {
                    let at = "\(folder.lastPathComponent) \(file) case \(i)"
                    try check(at, pre, c)
                    checkPrediction(at, manifest, c)
                    checked += 1
                }
            }
        }
        XCTAssertGreaterThan(checked, 0, "the committed audio-hubert fixture has cases")
        XCTAssertTrue(masked, "no model with an attention mask among the audio vectors")
    }

    func testAnotherSamplingRateIsRefused() throws {
        let folder = try XCTUnwrap(try fixtureFolders(containing: "audio.json").first)
        let model = try BMSDKModel(folder: folder, runner: NoRunner())
        let audio = try XCTUnwrap(model.audio)
        XCTAssertThrowsError(try model.feeds(samples: [0.1, 0.2], rate: audio.samplingRate / 2)) { error in
            XCTAssertTrue("\(error)".contains("resample"), "\(error)")
        }
    }

    func testFeedsAreNamedAndShapedAsTheManifestSays() throws {
        for folder in try fixtureFolders(containing: "audio.json") {
            let model = try BMSDKModel(folder: folder, runner: NoRunner())
            let audio = try XCTUnwrap(model.audio)
            let feeds = try model.feeds(samples: [0.1, -0.2, 0.3], rate: audio.samplingRate)
            XCTAssertEqual(Set(feeds.keys), Set(model.manifest.inputs.map(\.name)), folder.lastPathComponent)
            XCTAssertEqual(feeds[audio.inputName]?.shape, [1, audio.samples])
        }
    }
}
