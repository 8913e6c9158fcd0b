import XCTest
@testable import BMSDK

/// Token classification and question answering against Python's predict(): tests/devices/span_fixtures.py writes,
/// for tiny NER taggers and QA readers (BERT WordPiece, RoBERTa byte-level BPE), each input's windows (ids,
/// offsets, ...) with the model's raw outputs and what predict() returned. The Swift tokenizer encodes the input
/// itself (must give the same windows), Entities / AnswerSpans post-process the recorded raw outputs, and the
/// entities and answers must be the same: labels, offsets, words, scores within 1e-4.
final class SpanTests: XCTestCase {
    static let tolerance = 1e-4

    struct Folder {
        let url: URL
        let manifest: [String: Any]
        let spans: [String: Any]
    }

    static func folders(task: String) throws -> [Folder] {
        var roots: [URL] = []
        if let bundled = Bundle.module.url(forResource: "Fixtures", withExtension: nil) { roots.append(bundled) }
        if let extra = ProcessInfo.processInfo.environment["BMSDK_VECTORS_DIR"] { roots.append(URL(fileURLWithPath: extra)) }
        var out: [Folder] = []
        for root in roots {
            for folder in try FileManager.default.contentsOfDirectory(at: root, includingPropertiesForKeys: nil).sorted(by: { $0.path < $1.path }) {
                let spans = folder.appendingPathComponent("spans.json")
                guard FileManager.default.fileExists(atPath: spans.path) else { continue }
                let json = try JSONSerialization.jsonObject(with: Data(contentsOf: spans)) as! [String: Any]
                guard json["task"] as? String == task else { continue }
                let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("bmsdk.json"))) as! [String: Any]
                out.append(Folder(url: folder, manifest: manifest, spans: json))
            }
        }
        return out
    }

    static func tokenizer(_ f: Folder) throws -> TextTokenizer {
        let pre = f.manifest["preprocessing"] as! [String: Any]
        return try TextTokenizer(tokenizerJSON: f.url.appendingPathComponent("tokenizer/tokenizer.json"), maxLength: pre["max_length"] as! Int)
    }

    static func floats(_ v: Any?) -> [Float] { (v as! [Any]).map { Float(($0 as! NSNumber).doubleValue) } }

    func checkWindow(_ at: String, _ w: [String: Any], _ got: SpanEncoding) {
        XCTAssertEqual(w["ids"] as? [Int], got.ids, "\(at) ids")
        XCTAssertEqual(w["type_ids"] as? [Int], got.typeIds, "\(at) type ids")
        XCTAssertEqual(w["tokens"] as? [String], got.tokens, "\(at) tokens")
        XCTAssertEqual(w["offsets"] as? [[Int]], got.offsets, "\(at) offsets")
        XCTAssertEqual(w["special"] as? [Int], got.special, "\(at) special")
        XCTAssertEqual(w["sequence_ids"] as? [Int], got.sequenceIds, "\(at) sequence ids")
        XCTAssertEqual(w["word_ids"] as? [Int], got.wordIds, "\(at) word ids")
    }

    func checkEntities(_ at: String, _ expected: [[String: Any]], _ got: [Entities.Entity]) {
        XCTAssertEqual(expected.count, got.count, "\(at): \(got)")
        for (i, (e, g)) in zip(expected, got).enumerated() {
            let grouped = e["entity_group"] != nil
            XCTAssertEqual(grouped, g.grouped, "\(at) entity \(i) grouped")
            XCTAssertEqual((grouped ? e["entity_group"] : e["entity"]) as? String, g.label, "\(at) entity \(i) label")
            XCTAssertEqual(e["word"] as? String, g.word, "\(at) entity \(i) word")
            XCTAssertEqual(e["start"] as? Int, g.start, "\(at) entity \(i) start")
            XCTAssertEqual(e["end"] as? Int, g.end, "\(at) entity \(i) end")
            XCTAssertEqual((e["score"] as! NSNumber).doubleValue, g.score, accuracy: Self.tolerance, "\(at) entity \(i) score")
            if !grouped { XCTAssertEqual(e["index"] as? Int, g.index, "\(at) entity \(i) index") }
        }
    }

    func testTokenClassificationGivesPythonsEntities() throws {
        let folders = try Self.folders(task: "token-classification")
        XCTAssertFalse(folders.isEmpty, "no token-classification spans.json")
        var checked = 0
        for f in folders {
            let tokenizer = try Self.tokenizer(f)
            let post = f.manifest["postprocessing"] as! [String: Any]
            let labels = post["labels"] as! [String]
            let ignore = post["ignore_labels"] as? [String] ?? ["O"]
            let output = post["output"] as? String ?? "logits"
            for item in f.spans["cases"] as! [[String: Any]] {
                let text = item["text"] as! String
                let at = "\(f.url.lastPathComponent) '\(text)'"
                let windows = item["windows"] as! [[String: Any]]
                XCTAssertEqual(windows.count, 1, at)
                let enc = try tokenizer.encodeWithOffsets(text)
                checkWindow(at, windows[0], enc)
                let logits = ((windows[0]["outputs"] as! [String: Any])[output] as! [Any]).map(Self.floats)
                let expected = item["entities"] as! [String: Any]
                for strategy in Entities.strategies {
                    let got = try Entities.of(text: text, encoding: enc, logits: logits, labels: labels, tokenizer: tokenizer,
                                              strategy: strategy, ignore: ignore)
                    checkEntities("\(at) \(strategy)", expected[strategy] as! [[String: Any]], got)
                    checked += got.count
                }
                let all = try Entities.of(text: text, encoding: enc, logits: logits, labels: labels, tokenizer: tokenizer,
                                          strategy: "none", ignore: [])
                checkEntities("\(at) none, ignore_labels []", item["entities_all"] as! [[String: Any]], all)
                XCTAssertEqual(all.count, enc.ids.count - enc.special.reduce(0, +), at)
            }
        }
        XCTAssertGreaterThan(checked, 50)
    }

    /// Replays the recorded raw outputs of each window, found by its input ids (and checks the feeds' shapes).
    struct ReplayRunner: Runner {
        let outputs: [[Int]: [String: [Float]]]

        init(_ cases: [[String: Any]]) {
            var outputs: [[Int]: [String: [Float]]] = [:]
            for item in cases {
                for w in item["windows"] as! [[String: Any]] {
                    var flat: [String: [Float]] = [:]
                    for (name, value) in w["outputs"] as! [String: Any] {
                        flat[name] = (value as! [Any]).flatMap { v in (v as? [Any]).map(SpanTests.floats) ?? [Float((v as! NSNumber).doubleValue)] }
                    }
                    outputs[w["ids"] as! [Int]] = flat
                }
            }
            self.outputs = outputs
        }

        func run(_ feeds: [String: Tensor]) throws -> [String: [Float]] {
            guard case .int32(let ids)? = feeds["input_ids"]?.values, let out = outputs[ids.map(Int.init)] else {
                throw BMSDKError.input("no recorded outputs for these input ids")
            }
            return out
        }
    }

    /// BMSDKModel end to end (tokenizer, feeds, one runner call per window, post-processing with the manifest's
    /// defaults) over the replayed outputs: the default-option predict() results.
    func testModelPredictsEntitiesAndAnswers() throws {
        var checked = 0
        for f in try Self.folders(task: "token-classification") + Self.folders(task: "question-answering") {
            let cases = f.spans["cases"] as! [[String: Any]]
            let model = try BMSDKModel(folder: f.url, runner: ReplayRunner(cases))
            for item in cases {
                if let text = item["text"] as? String {
                    let expected = (item["entities"] as! [String: Any])["simple"] as! [[String: Any]]
                    checkEntities("\(f.url.lastPathComponent) model '\(text)'", expected, try model.entities(text: text))
                } else {
                    let got = try model.answers(question: item["question"] as! String, context: item["context"] as! String)
                    let run = (item["answers"] as! [[String: Any]]).first { ($0["options"] as! [String: Any]).isEmpty }!
                    let e = run["expected"] as! [String: Any]
                    XCTAssertEqual(got.count, 1)
                    XCTAssertEqual(e["answer"] as? String, got.first?.answer, "\(f.url.lastPathComponent) model \(item["question"]!)")
                    XCTAssertEqual(e["start"] as? Int, got.first?.start)
                    XCTAssertEqual((e["score"] as! NSNumber).doubleValue, got.first?.score ?? -1, accuracy: Self.tolerance)
                }
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 30)
    }

    func testQuestionAnsweringGivesPythonsAnswers() throws {
        let folders = try Self.folders(task: "question-answering")
        XCTAssertFalse(folders.isEmpty, "no question-answering spans.json")
        var windowsSeen = 0, multiWindow = 0
        for f in folders {
            let tokenizer = try Self.tokenizer(f)
            let stride = (f.manifest["preprocessing"] as! [String: Any])["stride"] as! Int
            let post = f.manifest["postprocessing"] as! [String: Any]
            for item in f.spans["cases"] as! [[String: Any]] {
                let question = item["question"] as! String, context = item["context"] as! String
                let at = "\(f.url.lastPathComponent) '\(question)'"
                let windows = try tokenizer.encodePair(question: question, context: context, stride: stride)
                let recorded = item["windows"] as! [[String: Any]]
                XCTAssertEqual(recorded.count, windows.count, "\(at) windows")
                guard recorded.count == windows.count else { continue }
                for (w, (r, g)) in zip(recorded, windows).enumerated() { checkWindow("\(at) window \(w)", r, g) }
                let starts = recorded.map { Self.floats(($0["outputs"] as! [String: Any])["start_logits"]) }
                let ends = recorded.map { Self.floats(($0["outputs"] as! [String: Any])["end_logits"]) }
                windowsSeen += windows.count
                multiWindow += windows.count > 1 ? 1 : 0
                for run in item["answers"] as! [[String: Any]] {
                    let given = run["options"] as! [String: Any]
                    let options = AnswerSpans.Options(post.merging(given) { $1 })
                    let got = try AnswerSpans.answers(context: context, windows: windows, startLogits: starts, endLogits: ends, options: options)
                    let expected = (run["expected"] as? [String: Any]).map { [$0] } ?? (run["expected"] as! [[String: Any]])
                    XCTAssertEqual(expected.count, got.count, "\(at) \(given): \(got)")
                    for (i, (e, g)) in zip(expected, got).enumerated() {
                        XCTAssertEqual(e["answer"] as? String, g.answer, "\(at) \(given) answer \(i)")
                        XCTAssertEqual(e["start"] as? Int, g.start, "\(at) \(given) start \(i)")
                        XCTAssertEqual(e["end"] as? Int, g.end, "\(at) \(given) end \(i)")
                        XCTAssertEqual((e["score"] as! NSNumber).doubleValue, g.score, accuracy: Self.tolerance, "\(at) \(given) score \(i)")
                    }
                }
            }
        }
        XCTAssertGreaterThan(windowsSeen, 20)
        XCTAssertGreaterThanOrEqual(multiWindow, 4)
    }
}
