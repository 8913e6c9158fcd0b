import Foundation

/// The next token from one logits row: greedy (argmax, the first of equal maxima) when temperature is 0, otherwise
/// softmax(logits / temperature) restricted to the `topK` most likely tokens (0: all) and then to the smallest set
/// whose probability reaches `topP` (1: all), drawn with a seeded SplitMix64 generator (the same sequence as the
/// Android library's Sampler for the same seed).
public struct Sampler {
    public let temperature: Float
    public let topK: Int
    public let topP: Float
    private var state: UInt64

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, seed: UInt64 = 0) throws {
        guard temperature >= 0, topK >= 0, topP > 0, topP <= 1 else {
            throw BMSDKError.input("sampling needs temperature >= 0, top_k >= 0 and 0 < top_p <= 1")
        }
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        state = seed
    }

    public static func argmax(_ logits: ArraySlice<Float>) -> Int {
        var best = logits.startIndex
        for i in logits.indices where logits[i] > logits[best] { best = i }
        return best - logits.startIndex
    }

    public mutating func sample(_ logits: [Float]) -> Int {
        if temperature == 0 { return Self.argmax(logits[...]) }
        let order = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
        let keep = topK > 0 ? min(topK, order.count) : order.count
        let top = Double(logits[order[0]])
        let p = (0..<keep).map { exp((Double(logits[order[$0]]) - top) / Double(temperature)) }
        let sum = p.reduce(0, +)
        var nucleus = keep
        var cumulative = 0.0
        for i in 0..<keep {
            cumulative += p[i] / sum
            if cumulative >= Double(topP) { nucleus = i + 1; break }
        }
        var r = nextDouble() * p[0..<nucleus].reduce(0, +)
        for i in 0..<nucleus {
            r -= p[i]
            if r < 0 { return order[i] }
        }
        return order[nucleus - 1]
    }

    /// SplitMix64: uniform in [0, 1) from the top 53 bits.
    mutating func nextDouble() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) * 0x1.0p-53
    }
}
