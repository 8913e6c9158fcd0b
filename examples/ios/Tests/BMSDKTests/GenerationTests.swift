import Foundation
import XCTest

@testable import BMSDK

/// The generator against text-generation vectors (bmsdk.tasks.generation_vectors: folders with a vectors.json of
/// task text-generation and a tokenizer.json), BPE against Hugging Face (folders with bpe-cases.json), streaming,
/// stop strings and a full cache. Folders: the committed Fixtures and those under BMSDK_VECTORS_DIR.
final class GenerationTests: XCTestCase {
    struct Folder {
        let url: URL
        let json: [String: Any]
        var name: String { url.lastPathComponent }
    }

    static func folders(with file: String) throws -> [Folder] {
        var roots: [URL] = []
        if let bundled = Bundle.module.url(forResource: "Fixtures", withExtension: nil) { roots.append(bundled) }
        if let extra = ProcessInfo.processInfo.environment["BMSDK_VECTORS_DIR"] { roots.append(URL(fileURLWithPath: extra)) }
        var found: [Folder] = []
        for root in roots {
            for folder in try FileManager.default.contentsOfDirectory(at: root, includingPropertiesForKeys: nil).sorted(by: { $0.path < $1.path }) {
                let url = folder.appendingPathComponent(file)
                guard FileManager.default.fileExists(atPath: url.path) else { continue }
                let json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
                if file == "vectors.json" && json["task"] as? String != "text-generation" { continue }
                found.append(Folder(url: folder, json: json))
            }
        }
        return found
    }

    static func generation() throws -> [Folder] {
        let found = try folders(with: "vectors.json")
        XCTAssertFalse(found.isEmpty, "no text-generation vectors (the committed Fixtures have one)")
        return found
    }

    static func tokenizer(_ folder: Folder) throws -> BPETokenizer {
        let flat = folder.url.appendingPathComponent("tokenizer.json")
        let url = FileManager.default.fileExists(atPath: flat.path) ? flat : folder.url.appendingPathComponent("tokenizer/tokenizer.json")
        return try BPETokenizer(tokenizerJSON: url)
    }

    static func spec(_ folder: Folder) throws -> GenerationSpec {
        try GenerationSpec(json: folder.json["generation"] as! [String: Any])
    }

    static func cases(_ folder: Folder) -> [[String: Any]] { folder.json["cases"] as! [[String: Any]] }

    func testGenerationReplaysTheVectors() throws {
        var checked = 0
        for folder in try Self.generation() {
            let tok = try Self.tokenizer(folder)
            let spec = try Self.spec(folder)
            for kase in Self.cases(folder) {
                let prompt = kase["prompt"] as! String
                let place = "\(folder.name): \(prompt)"
                XCTAssertEqual(tok.encode(prompt), kase["prompt_ids"] as! [Int], "\(place) prompt ids")
                let replay = StepRunners.Replay(spec: spec, kase: kase, place: place)
                var streamed = ""
                let result = try Generator(spec: spec, tokenizer: tok, runner: replay)
                    .generate(prompt, options: .init(maxNewTokens: kase["max_new_tokens"] as! Int)) { streamed += $0 }
                XCTAssertEqual(result.tokenIds, kase["token_ids"] as! [Int], "\(place) tokens")
                XCTAssertEqual(Array(result.text.unicodeScalars), Array((kase["text"] as! String).unicodeScalars), "\(place) text")
                XCTAssertEqual(Array(streamed.unicodeScalars), Array(result.text.unicodeScalars), "\(place) streamed")
                XCTAssertTrue(replay.done, "\(place): fewer calls than recorded steps")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 0)
    }

    func testRecordedLogitsPickTheRecordedTokens() throws {
        for folder in try Self.generation() {
            for kase in Self.cases(folder) {
                for step in kase["steps"] as! [[String: Any]] {
                    guard let logits = step["logits"] as? [NSNumber], let token = step["token_id"] as? Int else { continue }
                    XCTAssertEqual(Sampler.argmax(logits.map { $0.floatValue }[...]), token)
                }
            }
        }
    }

    func testBPEEncodesAndDecodesAsHuggingFace() throws {
        var checked = 0
        let folders = try Self.folders(with: "bpe-cases.json")
        XCTAssertFalse(folders.isEmpty)
        for folder in folders {
            let tok = try Self.tokenizer(folder)
            for kase in folder.json["cases"] as! [[String: Any]] {
                let text = kase["text"] as! String
                let ids = kase["ids"] as! [Int]
                let decoded = Array((kase["decoded"] as! String).unicodeScalars)
                XCTAssertEqual(tok.encode(text), ids, "\(folder.name): \(text.debugDescription)")
                XCTAssertEqual(Array(tok.decode(ids).unicodeScalars), decoded, "\(folder.name): \(text.debugDescription)")
                XCTAssertEqual(Array(Self.streamed(tok, ids).unicodeScalars), decoded, "\(folder.name) streamed: \(text.debugDescription)")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 0)
    }

    static func streamed(_ tok: BPETokenizer, _ ids: [Int]) -> String {
        var stream = tok.decoder.stream()
        var out = ""
        for id in ids where !tok.isSpecial(id) { out += stream.feed(tok.token(id)) }
        return out + stream.finish()
    }

    /// A byte-level tokenizer spells a rare emoji with several byte tokens: no chunk may hold half of it.
    func testStreamingHoldsIncompleteCharacters() throws {
        let folder = try XCTUnwrap(try Self.generation().first)
        let tok = try Self.tokenizer(folder)
        let spec = try Self.spec(folder)
        let text = "café 🔥 naïve"
        let ids = tok.encode(text)
        let specials = tok.encode("").count  // bos: the prompt; the script generates the text's tokens
        let script = Array(ids[specials...])
        XCTAssertTrue(script.contains { tok.decode([$0]).contains("\u{FFFD}") }, "a token should hold part of a character")
        var chunks: [String] = []
        let result = try Generator(spec: spec, tokenizer: tok, runner: StepRunners.Scripted(spec: spec, script: script))
            .generate(ids: Array(ids[..<specials]), options: .init(maxNewTokens: script.count)) { chunks.append($0) }
        XCTAssertEqual(result.text, text)
        XCTAssertEqual(chunks.joined(), text)
        XCTAssertFalse(chunks.contains { $0.contains("\u{FFFD}") })
        var utf8 = UTF8Stream()
        XCTAssertEqual(utf8.feed([0xC3]), "")
        XCTAssertEqual(utf8.feed([0xA9]), "é")
        XCTAssertEqual(UTF8Stream.decode([0xE6, 0x97, 0x61, 0xF0, 0x80]), "\u{FFFD}a\u{FFFD}\u{FFFD}")
    }

    func testStopStringsCutTheTextAndTheStream() throws {
        let folder = try XCTUnwrap(try Self.generation().first)
        let tok = try Self.tokenizer(folder)
        let spec = try Self.spec(folder)
        let ids = tok.encode("Once upon a time there was a model")
        var options = Generator.Options(maxNewTokens: 50)
        options.stopStrings = ["there", "time t"]
        var streamed = ""
        let result = try Generator(spec: spec, tokenizer: tok, runner: StepRunners.Scripted(spec: spec, script: Array(ids[1...])))
            .generate(ids: [ids[0]], options: options) { streamed += $0 }
        XCTAssertEqual(result.text, "Once upon a ")
        XCTAssertEqual(result.stopReason, "stop")
        XCTAssertEqual(streamed, result.text)
        XCTAssertLessThan(result.tokenIds.count, ids.count - 1)
    }

    func testEosStopsAndIsNotText() throws {
        let folder = try XCTUnwrap(try Self.generation().first)
        let tok = try Self.tokenizer(folder)
        let spec = try Self.spec(folder)
        let word = tok.encode("café")
        let script = [word[1], word.last!, spec.eosIds[0], word[1]]
        let result = try Generator(spec: spec, tokenizer: tok, runner: StepRunners.Scripted(spec: spec, script: script))
            .generate(ids: [word[0]], options: .init(maxNewTokens: 10))
        XCTAssertEqual(result.stopReason, "eos")
        XCTAssertEqual(result.tokenIds.count, 3)
        XCTAssertEqual(result.text, tok.decode([word[1], word.last!]))
    }

    func testWithoutLengthOneDecodeIsPaddedToo() throws {
        let folder = try XCTUnwrap(try Self.generation().first)
        let tok = try Self.tokenizer(folder)
        var spec = try Self.spec(folder)
        spec.prefillLengths = [4]
        let prompt = tok.encode("Once upon a time")  // longer than 4: chunked
        let runner = StepRunners.Scripted(spec: spec, script: [70, 71, 72])
        let result = try Generator(spec: spec, tokenizer: tok, runner: runner).generate(ids: prompt, options: .init(maxNewTokens: 3))
        XCTAssertEqual(runner.feeds.count, (prompt.count + 3) / 4 + 2)
        XCTAssertTrue(runner.feeds.allSatisfy { StepRunners.longs($0["input_ids"]).count == 4 })
        let decode = try XCTUnwrap(runner.feeds.last)
        let c = spec.cacheLength
        XCTAssertEqual(StepRunners.ones(StepRunners.longs(decode["attention_mask"]), c..<(c + 4)), 1)
        XCTAssertEqual(StepRunners.longs(decode["position_ids"])[0], Int64(prompt.count + 1))
        XCTAssertEqual(result.tokenIds.count, 3)
    }

    func testAFullCacheIsRefusedOrSlid() throws {
        let folder = try XCTUnwrap(try Self.generation().first)
        let tok = try Self.tokenizer(folder)
        var spec = try Self.spec(folder)
        spec.cacheLength = 6
        let prompt = Array(tok.encode("café au lait").prefix(3))
        let token = prompt.last!
        XCTAssertThrowsError(try Generator(spec: spec, tokenizer: tok, runner: StepRunners.Scripted(spec: spec, script: [token]))
            .generate(ids: prompt, options: .init(maxNewTokens: 10))) { error in
            XCTAssertTrue("\(error)".contains("cache length 6"), "\(error)")
        }
        var slide = Generator.Options(maxNewTokens: 10)
        slide.cachePolicy = .slide
        let runner = StepRunners.Scripted(spec: spec, script: [token])
        let result = try Generator(spec: spec, tokenizer: tok, runner: runner).generate(ids: prompt, options: slide)
        XCTAssertEqual(result.tokenIds.count, 10)
        let last = try XCTUnwrap(runner.feeds.last)
        let position = StepRunners.longs(last["position_ids"])[0]
        XCTAssertEqual(position, Int64(prompt.count + 8), "positions keep increasing")
        XCTAssertEqual(StepRunners.ones(StepRunners.longs(last["attention_mask"]), 0..<6), 5)
        XCTAssertEqual(StepRunners.slotPositions(spec, last, 5), (1...5).map { position - Int64(6 - $0) }, "the latest positions")
    }
}

/// Sampling: greedy at temperature 0, top-k and top-p restrict the candidates, a seed fixes the draws.
final class SamplerTests: XCTestCase {
    let logits: [Float] = [1, 3, 2, 3, 0]

    func draws(_ s: Sampler, _ n: Int) -> [Int] {
        var s = s
        return (0..<n).map { _ in s.sample(logits) }
    }

    func testTemperatureZeroIsArgmaxFirstOfTies() throws {
        XCTAssertEqual(draws(try Sampler(), 1), [1])
        XCTAssertEqual(Sampler.argmax([9, 9, 0, 5, 1][2...]), 1)  // a row inside a larger array
    }

    func testTopKAndTopPKeepOnlyTheLikeliest() throws {
        XCTAssertTrue(draws(try Sampler(temperature: 5, topK: 2, seed: 7), 200).allSatisfy { $0 == 1 || $0 == 3 })
        XCTAssertEqual(Set(draws(try Sampler(temperature: 1, topP: 0.01, seed: 7), 50)), [1])
    }

    func testASeedFixesTheDrawsAndFrequenciesFollowSoftmax() throws {
        XCTAssertEqual(draws(try Sampler(temperature: 1, seed: 42), 100), draws(try Sampler(temperature: 1, seed: 42), 100))
        XCTAssertNotEqual(draws(try Sampler(temperature: 1, seed: 1), 100), draws(try Sampler(temperature: 1, seed: 2), 100))
        let n = 20000
        var counts = [Int](repeating: 0, count: logits.count)
        for t in draws(try Sampler(temperature: 1, seed: 3), n) { counts[t] += 1 }
        let z = logits.map { exp(Double($0)) }.reduce(0, +)
        for (i, l) in logits.enumerated() {
            XCTAssertEqual(Double(counts[i]) / Double(n), exp(Double(l)) / z, accuracy: 0.015, "token \(i)")
        }
    }

    func testInvalidSettingsAreRejected() {
        XCTAssertThrowsError(try Sampler(temperature: -1))
        XCTAssertThrowsError(try Sampler(temperature: 1, topP: 0))
    }
}
