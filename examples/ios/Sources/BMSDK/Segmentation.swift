import Foundation

/// Semantic segmentation post-processing as bmsdk's Python `predict()` does it: the logits [labels, h, w] of one
/// image upsampled to the size wanted (the image's own, or the model's input size) bilinearly with
/// align_corners=False, as torch's `interpolate`, in Float and in the same order of operations as bmsdk's numpy
/// code, so that the masks are equal pixel for pixel; each pixel's label is the first largest; then each present
/// label's share of the pixels, largest first (ties: lower label index first).
public enum Segmentation {
    /// One image's result: mask[y * width + x] is a label index into `labels`.
    public struct Result {
        public let height: Int
        public let width: Int
        public let mask: [Int]
        public let labels: [String]
        /// (label, share of the pixels), present labels only, largest first.
        public let fractions: [(label: String, fraction: Double)]
    }

    /// `logits`: [labels, h, w] row-major (one image of the model's output); the mask is height x width.
    public static func of(logits: [Float], h: Int, w: Int, height: Int, width: Int, labels: [String]?) -> Result {
        let count = logits.count / (h * w)
        let names = (0..<count).map { labels?[$0] ?? "LABEL_\($0)" }
        let mask = upsampleArgmax(logits: logits, labels: count, h: h, w: w, height: height, width: width)
        var counts = [Int](repeating: 0, count: count)
        for label in mask { counts[label] += 1 }
        let order = counts.indices.sorted { counts[$0] != counts[$1] ? counts[$0] > counts[$1] : $0 < $1 }
        let fractions = order.filter { counts[$0] > 0 }.map { (label: names[$0], fraction: Double(counts[$0]) / Double(mask.count)) }
        return Result(height: height, width: width, mask: mask, labels: names, fractions: fractions)
    }

    /// The argmax over labels of the logits upsampled to height x width (mask[y * width + x]).
    public static func upsampleArgmax(logits: [Float], labels: Int, h: Int, w: Int, height: Int, width: Int) -> [Int] {
        let ys = Axis(input: h, output: height), xs = Axis(input: w, output: width)
        var mask = [Int](repeating: 0, count: height * width)
        for y in 0..<height {
            for x in 0..<width {
                var best = -Float.infinity
                var label = 0
                for c in 0..<labels {
                    let top = c * h * w + ys.i0[y] * w, bottom = c * h * w + ys.i1[y] * w
                    let upper = xs.w0[x] * logits[top + xs.i0[x]] + xs.w1[x] * logits[top + xs.i1[x]]
                    let lower = xs.w0[x] * logits[bottom + xs.i0[x]] + xs.w1[x] * logits[bottom + xs.i1[x]]
                    let value = ys.w0[y] * upper + ys.w1[y] * lower
                    if value > best || c == 0 {  // the first largest wins, as numpy's argmax
                        best = value
                        label = c
                    }
                }
                mask[y * width + x] = label
            }
        }
        return mask
    }

    /// Source indices and weights of each output position along one axis, as torch's upsample_bilinear2d
    /// (align_corners=False, output size given): src = (dst + 0.5) * in / out - 0.5 in Float, clamped at 0; the far
    /// index clamped at in - 1.
    struct Axis {
        var i0: [Int] = [], i1: [Int] = []
        var w0: [Float] = [], w1: [Float] = []

        init(input: Int, output: Int) {
            let scale = Float(Double(input) / Double(output))
            for d in 0..<output {
                let src = max((Float(d) + 0.5) * scale - 0.5, 0)
                let low = Int(src)
                i0.append(low)
                i1.append(min(low + 1, input - 1))
                w1.append(src - Float(low))
                w0.append(1 - (src - Float(low)))
            }
        }
    }
}
