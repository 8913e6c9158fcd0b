import Foundation

/// Extractive question answering: the best answer spans from start/end logits, as bmsdk's Python side
/// (sdk/tasks/spans.py, after transformers 4's QuestionAnsweringPipeline) chooses them. Per window of the context:
/// logits outside the context (question, special tokens; the CLS token kept) are set to -10000, start and end are
/// softmaxed, every span of at most `maxAnswerLen` tokens is scored p(start) * p(end), the best `topK` are kept (then,
/// as transformers does, those starting or ending outside the context dropped) and mapped to character offsets of
/// the context, whole words with `alignToWords`. The answers of all windows are ranked together; with
/// `handleImpossibleAnswer` the empty answer competes with the smallest CLS score of any window.
public enum AnswerSpans {
    public struct Options {
        public var topK = 1
        public var maxAnswerLen = 15
        public var handleImpossibleAnswer = false
        public var alignToWords = true

        public init() {}

        /// The defaults recorded in a manifest's postprocessing section (or predict-style options).
        public init(_ post: [String: Any]) {
            if let v = post["top_k"] as? Int { topK = v }
            if let v = post["max_answer_len"] as? Int { maxAnswerLen = v }
            if let v = post["handle_impossible_answer"] as? Bool { handleImpossibleAnswer = v }
            if let v = post["align_to_words"] as? Bool { alignToWords = v }
        }
    }

    /// One answer: its text, character offsets [start, end) into the context (Unicode scalars) and score.
    public struct Answer {
        public let answer: String
        public let score: Double
        public let start: Int
        public let end: Int
    }

    static let nullStart = 1000000.0

    /// The best answers (at most topK, best first) over the windows of one (question, context) pair.
    public static func answers(context: String, windows: [SpanEncoding], startLogits: [[Float]], endLogits: [[Float]],
                               options o: Options = Options()) throws -> [Answer] {
        guard o.topK >= 1, o.maxAnswerLen >= 1 else { throw BMSDKError.input("top_k and max_answer_len must be whole numbers >= 1") }
        let cps = Array(context.unicodeScalars)
        var all: [Answer] = []
        var minNull = nullStart
        for (w, enc) in windows.enumerated() {
            minNull = min(minNull, window(cps, enc, startLogits[w], endLogits[w], o, &all))
        }
        if o.handleImpossibleAnswer { all.append(Answer(answer: "", score: minNull, start: 0, end: 0)) }
        // a stable sort, best first, as Python's sorted
        let sorted = all.enumerated().sorted { $0.element.score != $1.element.score ? $0.element.score > $1.element.score : $0.offset < $1.offset }
        return sorted.prefix(o.topK).map(\.element)
    }

    private static func window(_ context: [Unicode.Scalar], _ enc: SpanEncoding, _ startLogits: [Float], _ endLogits: [Float],
                               _ o: Options, _ out: inout [Answer]) -> Double {
        let n = enc.ids.count
        let allowed = (0..<n).map { enc.sequenceIds[$0] == 1 || (enc.special[0] != 0 && enc.ids[$0] == enc.ids[0]) }
        var start = Entities.softmax((0..<n).map { allowed[$0] ? startLogits[$0] : -10000 })
        var end = Entities.softmax((0..<n).map { allowed[$0] ? endLogits[$0] : -10000 })
        var minNull = nullStart
        if o.handleImpossibleAnswer { minNull = min(minNull, Double(start[0] * end[0])) }
        start[0] = 0
        end[0] = 0
        var scores = [Float](repeating: 0, count: n * n)  // (start, end) pairs flattened as start * n + end
        for i in 0..<n {
            var j = i
            while j < n && j - i <= o.maxAnswerLen - 1 { scores[i * n + j] = start[i] * end[j]; j += 1 }
        }
        let order = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
        for flat in order.prefix(o.topK) {
            let s = flat / n, e = flat % n
            // transformers' np.isin(starts, undesired.nonzero()) also matches index 0 (the row indices of the tuple)
            guard s == 0 || allowed[s], e == 0 || allowed[e] else { continue }
            var chars = (enc.offsets[s][0], enc.offsets[e][1])
            if o.alignToWords, enc.wordIds[s] >= 0, enc.wordIds[e] >= 0,
               let first = enc.wordToChars(enc.wordIds[s], sequence: 1), let last = enc.wordToChars(enc.wordIds[e], sequence: 1) {
                chars = (first.0, last.1)
            }
            out.append(Answer(answer: Normalizers.scalars(context[chars.0..<chars.1]), score: Double(scores[flat]),
                              start: chars.0, end: chars.1))
        }
        return minNull
    }
}
