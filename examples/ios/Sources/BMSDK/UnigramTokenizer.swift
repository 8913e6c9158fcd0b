import Foundation

/// A SentencePiece Unigram `tokenizer.json` (XLM-RoBERTa, ALBERT, DeBERTa-v2, T5: Precompiled and other
/// normalizers, WhitespaceSplit and Metaspace) as Hugging Face `tokenizers` applies it: the Pipeline, then on each
/// piece the Viterbi path of highest total score over the vocab's pieces, as its optimized encoder computes it (ties
/// keep the first candidate, shortest pieces first; a scalar no piece covers scores min_score - 10 as unk, and
/// adjacent unknowns fuse into one unk); with byte_fallback an unknown piece becomes its UTF-8 bytes as <0xNN>.
final class UnigramTokenizer {
    static let unkPenalty = 10.0

    private var ids: [[Unicode.Scalar]: Int] = [:]
    private var scores: [Double] = []
    private let unkId: Int
    private let byteFallback: Bool
    private let unkScore: Double
    private var longestPiece = 1
    private let pipeline: Pipeline

    init(_ root: [String: Any]) throws {
        guard let model = root["model"] as? [String: Any], (model["type"] as? String) == "Unigram",
              let vocab = model["vocab"] as? [[Any]] else {
            throw BMSDKError.tokenizer("not a Unigram tokenizer with a vocab")
        }
        for (id, entry) in vocab.enumerated() {
            guard entry.count == 2, let piece = entry[0] as? String, let score = (entry[1] as? NSNumber)?.doubleValue else {
                throw BMSDKError.tokenizer("Unigram vocab entry \(id) is not [piece, score]")
            }
            let key = Array(piece.unicodeScalars)
            ids[key] = id
            scores.append(score)
            longestPiece = max(longestPiece, key.count)
        }
        unkScore = (scores.min() ?? 0) - Self.unkPenalty
        guard let unk = model["unk_id"] as? Int, scores.indices.contains(unk) else {
            throw BMSDKError.tokenizer("Unigram: unk_id \(model["unk_id"] ?? "null") is not an id of the vocab")
        }
        unkId = unk
        byteFallback = model["byte_fallback"] as? Bool ?? false
        pipeline = try Pipeline(root)
    }

    /// The ids of one text, without special tokens around it.
    func tokens(_ text: String) -> [Int] {
        pipeline.encode(text) { piece in
            viterbi(Array(piece.unicodeScalars)).flatMap { token -> [Int] in
                if let id = ids[token] { return [id] }
                if byteFallback {
                    let bytes = Array(Normalizers.scalars(token).utf8).map { ids[Array(String(format: "<0x%02X>", $0).unicodeScalars)] }
                    if bytes.allSatisfy({ $0 != nil }) { return bytes.map { $0! } }
                }
                return [unkId]
            }
        }
    }

    /// The best segmentation of `s` into pieces (unknown stretches fused into one).
    private func viterbi(_ s: [Unicode.Scalar]) -> [[Unicode.Scalar]] {
        let n = s.count
        var best = [Double](repeating: 0, count: n + 1)
        var from = [Int](repeating: -1, count: n + 1)
        var node = [Int](repeating: -1, count: n + 1)
        for start in 0..<n {
            var hasSingle = false
            for end in (start + 1)...min(n, start + longestPiece) {
                guard let id = ids[Array(s[start..<end])] else { continue }
                let score = scores[id] + best[start]
                if from[end] < 0 || score > best[end] { (best[end], from[end], node[end]) = (score, start, id) }
                if end == start + 1 { hasSingle = true }
            }
            if !hasSingle {
                let score = unkScore + best[start]
                if from[start + 1] < 0 || score > best[start + 1] { (best[start + 1], from[start + 1], node[start + 1]) = (score, start, unkId) }
            }
        }
        var pieces: [[Unicode.Scalar]] = []
        var unknown: [Unicode.Scalar] = []
        var end = n
        while end > 0 {
            let piece = Array(s[from[end]..<end])
            if node[end] == unkId {
                unknown = piece + unknown
            } else {
                if !unknown.isEmpty { pieces.append(unknown); unknown = [] }
                pieces.append(piece)
            }
            end = from[end]
        }
        if !unknown.isEmpty { pieces.append(unknown) }
        return pieces.reversed()
    }
}
