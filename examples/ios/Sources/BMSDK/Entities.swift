import Foundation

/// Entities from per-token logits (token classification, e.g. NER), as bmsdk's Python side (sdk/tasks/entities.py)
/// and transformers' TokenClassificationPipeline make them. Aggregation strategies: `none` (one entity per token),
/// `simple` (adjacent tokens of one entity type grouped, a `B-` tag starting a new group) and the word-level `first`,
/// `average`, `max` (each piece of a word takes the label of its first piece, of the average of its pieces' scores,
/// or of its most confident piece; then grouped as `simple`). Special tokens never become entities; start/end are
/// character offsets (Unicode scalars) into the text; labels in `ignore` (default "O") are left out.
public enum Entities {
    public static let strategies = ["none", "simple", "first", "average", "max"]

    /// One entity: `label` is the token's label (strategy none: "B-PER") or the group's ("PER").
    public struct Entity {
        public let label: String
        public let grouped: Bool
        public let score: Double
        /// The token index (strategy none), else -1.
        public let index: Int
        public let word: String
        public let start: Int
        public let end: Int
    }

    private struct Piece {
        var word: String
        let scores: [Float]
        let start: Int
        let end: Int
        let index: Int
        var subword: Bool
    }

    /// Softmax over one token's labels, in float32 as the Python side computes it.
    public static func softmax(_ logits: [Float]) -> [Float] {
        let top = logits.max() ?? 0
        let e = logits.map { Float(exp(Double($0 - top))) }
        let sum = e.reduce(Float(0), +)
        return e.map { $0 / sum }
    }

    static func argmax(_ v: [Float]) -> Int {
        var best = 0
        for i in v.indices where v[i] > v[best] { best = i }
        return best
    }

    /// The entities of `text` from its encoding and the model's logits [tokens][labels] (rows past the encoding,
    /// padding, are ignored).
    public static func of(text: String, encoding enc: SpanEncoding, logits: [[Float]], labels: [String],
                          tokenizer: TextTokenizer, strategy: String = "simple", ignore: [String] = ["O"]) throws -> [Entity] {
        let strategy = strategy.lowercased()
        guard strategies.contains(strategy) else {
            throw BMSDKError.input("unknown aggregation_strategy \(strategy): use one of \(strategies.joined(separator: ", "))")
        }
        let cps = Array(text.unicodeScalars)
        var pieces: [Piece] = []
        for i in enc.ids.indices where enc.special[i] == 0 {
            let start = enc.offsets[i][0], end = enc.offsets[i][1]
            let ref = Normalizers.scalars(cps[start..<end])
            var p = Piece(word: enc.tokens[i], scores: softmax(logits[i]), start: start, end: end, index: i, subword: false)
            if tokenizer.wordAware {
                p.subword = p.word.unicodeScalars.count != end - start
            } else {
                let space = (start - 1 >= 0 && cps[start - 1] == " ") || (start < cps.count && cps[start] == " ")
                p.subword = start > 0 && !space
            }
            if let unk = tokenizer.unkId, enc.ids[i] == unk {
                p.word = ref
                p.subword = false
            }
            pieces.append(p)
        }
        var found: [Entity] = []
        if ["first", "average", "max"].contains(strategy) {
            var words: [[Piece]] = []
            for p in pieces {
                if !words.isEmpty && p.subword { words[words.count - 1].append(p) } else { words.append([p]) }
            }
            for group in words {
                var scores: [Float]
                switch strategy {
                case "first": scores = group[0].scores
                case "max":
                    scores = group[0].scores
                    for p in group where p.scores[argmax(p.scores)] > scores[argmax(scores)] { scores = p.scores }
                default:
                    scores = group[0].scores.indices.map { k in Float(group.reduce(0.0) { $0 + Double($1.scores[k]) } / Double(group.count)) }
                }
                let best = argmax(scores)
                found.append(Entity(label: labels[best], grouped: false, score: Double(scores[best]), index: -1,
                                    word: tokenizer.joinTokens(group.map(\.word)), start: group[0].start, end: group[group.count - 1].end))
            }
        } else {
            for p in pieces {
                let best = argmax(p.scores)
                found.append(Entity(label: labels[best], grouped: false, score: Double(p.scores[best]), index: p.index,
                                    word: p.word, start: p.start, end: p.end))
            }
        }
        if strategy != "none" { found = group(found, tokenizer) }
        return found.filter { !ignore.contains($0.label) }
    }

    /// ("B" or "I", type): a label not in B-/I- form counts as a continuation of its own type.
    private static func tag(_ label: String) -> (String, String) {
        if label.hasPrefix("B-") || label.hasPrefix("I-") { return (String(label.prefix(1)), String(label.dropFirst(2))) }
        return ("I", label)
    }

    private static func group(_ found: [Entity], _ tokenizer: TextTokenizer) -> [Entity] {
        var groups: [[Entity]] = []
        for e in found {
            let (bi, type) = tag(e.label)
            if let last = groups.last?.last, type == tag(last.label).1, bi != "B" {
                groups[groups.count - 1].append(e)
            } else {
                groups.append([e])
            }
        }
        return groups.map { g in
            let first = g[0].label
            let label = first.firstIndex(of: "-").map { String(first[first.index(after: $0)...]) } ?? first
            return Entity(label: label, grouped: true, score: g.reduce(0.0) { $0 + $1.score } / Double(g.count), index: -1,
                          word: tokenizer.joinTokens(g.map(\.word)), start: g[0].start, end: g[g.count - 1].end)
        }
    }
}
