import Foundation
import XCTest

@testable import BMSDK

/// Runners for the generation tests: a replay of recorded vector steps and a scripted token sequence.
enum StepRunners {
    /// Presents whose every value is the absolute position of its token, so the cache shows what each slot holds.
    static func positionPresents(_ spec: GenerationSpec, _ positions: [Int64]) -> [String: [Float]] {
        var out: [String: [Float]] = [:]
        for i in 0..<spec.layers {
            var v: [Float] = []
            for _ in 0..<spec.kvHeads {
                for p in positions { v += Array(repeating: Float(p) + 0.5 * Float(i), count: spec.headDim) }
            }
            out["present_key_\(i)"] = v
            out["present_value_\(i)"] = v
        }
        return out
    }

    /// The position held by each valid cache slot of layer 0 (head 0), read from the past_key_0 feed.
    static func slotPositions(_ spec: GenerationSpec, _ feeds: [String: Tensor], _ valid: Int) -> [Int64] {
        guard case .float32(let past) = feeds["past_key_0"]!.values else { return [] }
        return (0..<valid).map { Int64(past[$0 * spec.headDim]) }
    }

    static func longs(_ t: Tensor?) -> [Int64] {
        guard let t, case .int64(let v) = t.values else { return [] }
        return v
    }

    static func ones(_ mask: [Int64], _ range: Range<Int>) -> Int { mask[range].filter { $0 == 1 }.count }

    /// Logits [1, width, V] with `row` at row `at` (zeros elsewhere).
    static func logits(width: Int, vocab: Int, at: Int, row: [Float]) -> [Float] {
        var v = [Float](repeating: 0, count: width * vocab)
        v.replaceSubrange((at * vocab)..<((at + 1) * vocab), with: row)
        return v
    }

    static func peaked(_ vocab: Int, _ token: Int?) -> [Float] {
        var row = [Float](repeating: 0, count: vocab)
        if let token { row[token] = 100 }
        return row
    }

    /// Replays one vector case: checks each call's input ids (real + pad), positions, attention mask and that the
    /// cache slots hold what earlier calls returned; returns the recorded logits row (or a peak at the recorded
    /// token where the vectors keep no logits).
    final class Replay: Runner {
        let spec: GenerationSpec
        let steps: [[String: Any]]
        let place: String
        private(set) var calls = 0

        init(spec: GenerationSpec, kase: [String: Any], place: String) {
            self.spec = spec
            steps = kase["steps"] as! [[String: Any]]
            self.place = place
        }

        var done: Bool { calls == steps.count }

        func run(_ feeds: [String: Tensor]) throws -> [String: [Float]] {
            let at = "\(place) step \(calls)"
            guard calls < steps.count else { XCTFail("\(at): more calls than recorded steps"); throw BMSDKError.input("replay over") }
            let step = steps[calls]
            calls += 1
            let ids = (step["input_ids"] as! [Int]).map(Int64.init)
            let positions = (step["position_ids"] as! [Int]).map(Int64.init)
            let valid = step["valid"] as! Int
            let real = ids.count
            let width = spec.prefillLengths?.first { $0 >= real } ?? real
            let fedIds = longs(feeds["input_ids"])
            XCTAssertEqual(fedIds.count, width, "\(at) T")
            XCTAssertEqual(Array(fedIds.prefix(real)), ids, "\(at) input_ids")
            XCTAssertEqual(Array(fedIds.dropFirst(real)), Array(repeating: Int64(spec.padId), count: width - real), "\(at) pad")
            let fedPositions = longs(feeds["position_ids"])
            XCTAssertEqual(Array(fedPositions.prefix(real)), positions, "\(at) position_ids")
            let mask = longs(feeds["attention_mask"])
            let c = spec.cacheLength
            XCTAssertEqual(mask.count, c + width, "\(at) mask length")
            XCTAssertEqual(ones(mask, 0..<valid), valid, "\(at) valid slots")
            XCTAssertEqual(ones(mask, valid..<c), 0, "\(at) empty slots")
            XCTAssertEqual(ones(mask, c..<(c + real)), real, "\(at) new tokens")
            XCTAssertEqual(ones(mask, (c + real)..<(c + width)), 0, "\(at) padding")
            XCTAssertEqual(slotPositions(spec, feeds, valid), (0..<valid).map(Int64.init), "\(at) cache slots")
            XCTAssertEqual(feeds["past_value_1"]?.shape, [1, spec.kvHeads, c, spec.headDim], "\(at) past shape")
            let row = (step["logits"] as? [NSNumber])?.map { $0.floatValue } ?? peaked(spec.vocabSize, step["token_id"] as? Int)
            var out = positionPresents(spec, fedPositions)
            out["logits"] = logits(width: width, vocab: spec.vocabSize, at: real - 1, row: row)
            return out
        }
    }

    /// Emits `script` one token per call (whatever the input) and keeps every call's feeds.
    final class Scripted: Runner {
        let spec: GenerationSpec
        let script: [Int]
        private(set) var feeds: [[String: Tensor]] = []

        init(spec: GenerationSpec, script: [Int]) {
            self.spec = spec
            self.script = script
        }

        func run(_ input: [String: Tensor]) throws -> [String: [Float]] {
            feeds.append(input)
            let positions = longs(input["position_ids"])
            let c = spec.cacheLength
            let real = ones(longs(input["attention_mask"]), c..<(c + positions.count))
            let token = script[min(feeds.count - 1, script.count - 1)]
            var out = positionPresents(spec, positions)
            out["logits"] = logits(width: positions.count, vocab: spec.vocabSize, at: real - 1, row: peaked(spec.vocabSize, token))
            return out
        }
    }
}
