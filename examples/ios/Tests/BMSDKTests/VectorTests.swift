import Foundation
import XCTest

@testable import BMSDK

/// Checks the tokenizer and the pre/post-processing against test vectors from `bmsdk export-vectors`.
///
/// Each fixture is a folder with the artifact's `bmsdk.json`, its `tokenizer/` (text models) and `vectors.json`.
/// The committed fixtures come from tiny test models; `BMSDK_VECTORS_DIR` adds folders generated at test time
/// (tests/test_ios_swift.py makes them from freshly converted models and the real MiniLM vocab).
final class VectorTests: XCTestCase {
    struct Fixture {
        let folder: URL
        let manifest: Manifest
        let cases: [[String: Any]]
    }

    static func fixtures() throws -> [Fixture] {
        var roots: [URL] = []
        if let bundled = Bundle.module.url(forResource: "Fixtures", withExtension: nil) { roots.append(bundled) }
        if let extra = ProcessInfo.processInfo.environment["BMSDK_VECTORS_DIR"] { roots.append(URL(fileURLWithPath: extra)) }
        var found: [Fixture] = []
        for root in roots {
            let folders = try FileManager.default.contentsOfDirectory(at: root, includingPropertiesForKeys: nil)
            for folder in folders.sorted(by: { $0.path < $1.path }) {
                let vectors = folder.appendingPathComponent("vectors.json")
                guard FileManager.default.fileExists(atPath: vectors.path) else { continue }
                let json = try JSONSerialization.jsonObject(with: Data(contentsOf: vectors)) as! [String: Any]
                XCTAssertEqual(json["format"] as? String, "bmsdk-test-vectors")
                if json["task"] as? String == "text-generation" { continue }  // GenerationTests replays those
                found.append(Fixture(folder: folder, manifest: try Manifest.load(folder: folder),
                                     cases: json["cases"] as! [[String: Any]]))
            }
        }
        return found
    }

    static func flatten(_ value: Any) -> [Double] {
        if let list = value as? [Any] { return list.flatMap(flatten) }
        return [(value as! NSNumber).doubleValue]
    }

    func testFixturesArePresent() throws {
        let fixtures = try Self.fixtures()
        XCTAssertGreaterThanOrEqual(fixtures.count, 2, "expected the committed text and image fixtures")
        XCTAssertTrue(fixtures.contains { $0.manifest.preprocessing.kind == "text" })
        XCTAssertTrue(fixtures.contains { $0.manifest.preprocessing.kind == "image" })
    }

    func testTokenizerMatchesPython() throws {
        var checked = 0
        for fixture in try Self.fixtures() where fixture.manifest.preprocessing.kind == "text" {
            let pre = fixture.manifest.preprocessing
            let tokenizer = try TextTokenizer(tokenizerJSON: fixture.folder.appendingPathComponent(pre.tokenizer!),
                                              maxLength: pre.maxLength!)
            for c in fixture.cases {
                let text = c["text"] as! String
                let feeds = c["feeds"] as! [String: Any]
                let encoding = tokenizer.encode(text)
                let expected = Self.flatten(feeds["input_ids"]!).map { Int($0) }
                XCTAssertEqual(encoding.inputIds, expected, "\(fixture.folder.lastPathComponent): \(text.debugDescription)")
                if let mask = feeds["attention_mask"] {
                    XCTAssertEqual(encoding.attentionMask, Self.flatten(mask).map { Int($0) })
                }
                if let types = feeds["token_type_ids"] {
                    XCTAssertEqual(encoding.tokenTypeIds, Self.flatten(types).map { Int($0) })
                }
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 0)
    }

    func testImagePreprocessingMatchesPython() throws {
        var checked = 0
        for fixture in try Self.fixtures() where fixture.manifest.preprocessing.kind == "image" {
            let pre = try ImagePreprocessor(fixture.manifest.preprocessing)
            let name = fixture.manifest.preprocessing.inputName ?? fixture.manifest.inputs[0].name
            for c in fixture.cases {
                let pixels = Self.flatten(c["pixels_hwc"]!).map { UInt8($0) }
                let expected = Self.flatten((c["feeds"] as! [String: Any])[name]!)
                let got = try pre.tensor(pixels: pixels)
                XCTAssertEqual(got.count, expected.count)
                let worst = zip(got, expected).map { abs(Double($0) - $1) }.max() ?? 0
                XCTAssertLessThan(worst, 1e-5, fixture.folder.lastPathComponent)
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 0)
    }

    func testImageGeometryMatchesPython() throws {
        var checked = 0
        for fixture in try Self.fixtures() where fixture.manifest.preprocessing.kind == "image" {
            let data = try Data(contentsOf: fixture.folder.appendingPathComponent("vectors.json"))
            let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
            guard let geometry = json["geometry"] as? [[String: [Int]]] else { continue }
            let pre = try ImagePreprocessor(fixture.manifest.preprocessing)
            for g in geometry {
                let image = g["image"]!, resized = g["resized"]!
                XCTAssertEqual(pre.resizedSize(height: image[0], width: image[1]), resized, "\(fixture.folder.lastPathComponent) \(image)")
                XCTAssertEqual(pre.cropOrigin(height: resized[0], width: resized[1]), g["crop_origin"]!)
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 0, "no fixture has image geometry cases")
    }

    func testPostprocessingMatchesPython() throws {
        var checked = 0
        for fixture in try Self.fixtures() where fixture.manifest.task.hasSuffix("classification") {
            let output = fixture.manifest.postprocessing.output ?? fixture.manifest.outputs[0].name
            for c in fixture.cases {
                guard let outputs = c["outputs"] as? [String: Any], let expected = c["prediction"] as? [String: Any] else { continue }
                let logits = Self.flatten(outputs[output]!).map { Float($0) }
                let got = Postprocessor.classify(logits: logits, labels: fixture.manifest.postprocessing.labels)
                XCTAssertEqual(got.label, expected["label"] as? String)
                XCTAssertEqual(got.index, expected["index"] as? Int)
                XCTAssertEqual(Double(got.score), (expected["score"] as! NSNumber).doubleValue, accuracy: 1e-6)
                for (label, score) in expected["scores"] as! [String: NSNumber] {
                    XCTAssertEqual(Double(got.scores[label]!), score.doubleValue, accuracy: 1e-6)
                }
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 0)
    }

    func testFeedsAreNamedAndShapedAsTheManifestSays() throws {
        for fixture in try Self.fixtures() {
            guard let c = fixture.cases.first, fixture.manifest.preprocessing.kind == "text" else { continue }
            let model = try BMSDKModel(folder: fixture.folder, runner: NoRunner())
            let feeds = try model.feeds(text: c["text"] as! String)
            XCTAssertEqual(Set(feeds.keys), Set(fixture.manifest.inputs.map(\.name)))
            let ids = feeds["input_ids"]!
            XCTAssertEqual(ids.shape, [1, Self.flatten((c["feeds"] as! [String: Any])["input_ids"]!).count])
        }
    }

    func testMissingManifestIsATypedError() {
        XCTAssertThrowsError(try Manifest.load(folder: URL(fileURLWithPath: "/nonexistent"))) { error in
            XCTAssertTrue("\(error)".contains("bmsdk convert"))
        }
    }

    func testTruncationKeepsClsAndSep() throws {
        let fixture = try XCTUnwrap(try Self.fixtures().first { $0.manifest.preprocessing.kind == "text" })
        let tokenizer = try TextTokenizer(
            tokenizerJSON: fixture.folder.appendingPathComponent(fixture.manifest.preprocessing.tokenizer!), maxLength: 5)
        let e = tokenizer.encode("the movie was great fun and good")
        XCTAssertEqual(e.inputIds.count, 5)
        XCTAssertEqual(Array(e.inputIds.prefix(tokenizer.prefixIds.count)), tokenizer.prefixIds)
        XCTAssertEqual(Array(e.inputIds.suffix(tokenizer.suffixIds.count)), tokenizer.suffixIds)
        XCTAssertFalse(tokenizer.prefixIds.isEmpty)
    }

    /// Folders with a tokenizer.json and tokenizer-cases.json (texts -> ids, type ids and mask as Hugging Face
    /// makes them): the committed Unigram fixture, and those tests/devices/test_ios_swift.py writes.
    static func tokenizerCaseFolders() throws -> [URL] {
        var roots: [URL] = []
        if let bundled = Bundle.module.url(forResource: "Fixtures", withExtension: nil) { roots.append(bundled) }
        if let extra = ProcessInfo.processInfo.environment["BMSDK_VECTORS_DIR"] { roots.append(URL(fileURLWithPath: extra)) }
        return try roots.flatMap { root in
            try FileManager.default.contentsOfDirectory(at: root, includingPropertiesForKeys: nil)
                .filter { FileManager.default.fileExists(atPath: $0.appendingPathComponent("tokenizer-cases.json").path) }
                .sorted { $0.path < $1.path }
        }
    }

    func testTokenizerCasesMatchHuggingFace() throws {
        var checked = 0
        for folder in try Self.tokenizerCaseFolders() {
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("tokenizer-cases.json"))) as! [String: Any]
            let tokenizer = try TextTokenizer(tokenizerJSON: folder.appendingPathComponent("tokenizer.json"),
                                              maxLength: json["max_length"] as! Int)
            for c in json["cases"] as! [[String: Any]] {
                let text = c["text"] as! String
                let e = tokenizer.encode(text)
                let where_ = "\(folder.lastPathComponent): \(text.debugDescription)"
                XCTAssertEqual(e.inputIds, c["input_ids"] as? [Int], where_)
                if let types = c["type_ids"] as? [Int] { XCTAssertEqual(e.tokenTypeIds, types, where_) }
                if let mask = c["attention_mask"] as? [Int] { XCTAssertEqual(e.attentionMask, mask, where_) }
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 0, "the committed tokenizer-xlmr fixture has cases")
    }

    func testTokenizerPartsOutsideThePackageAreRefusedAtLoad() {
        let unigram = #"{"model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0]]},"#
        let refused = [
            unigram + #" "normalizer": {"type": "Nmt"}}"#,
            unigram + #" "pre_tokenizer": {"type": "Digits", "individual_digits": true}}"#,
            unigram + #" "post_processor": {"type": "Future"}}"#,
            unigram + #" "added_tokens": [{"id": 0, "content": "<unk>", "single_word": true}]}"#,
            #"{"model": {"type": "WordLevel", "vocab": {}}}"#,
            unigram + #" "normalizer": {"type": "Precompiled", "precompiled_charsmap": "AAAA"}}"#,
            #"{"model": {"type": "Unigram", "vocab": [["<unk>", 0.0]]}}"#,
        ]
        for json in refused {
            XCTAssertThrowsError(try TextTokenizer(data: Data(json.utf8), maxLength: 16), json) { error in
                XCTAssertTrue("\(error)".contains("tokenizer"), "\(error)")
            }
        }
    }
}

/// Used only to build a BMSDKModel without CoreML: these tests never run a model.
struct NoRunner: Runner {
    func run(_ feeds: [String: Tensor]) throws -> [String: [Float]] {
        throw BMSDKError.unavailable("no runner in tests")
    }
}
