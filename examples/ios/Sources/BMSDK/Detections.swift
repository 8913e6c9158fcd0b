import Foundation

/// Object-detection post-processing as bmsdk's Python `predict()` does it (tasks/object_detection.py), for one image:
/// - `detr` (DETR, YOLOS): logits [queries, labels + 1] softmaxed in Float, the last ("no object") class dropped,
///   each query's first best label kept when its probability is above the threshold; pred_boxes cx, cy, w, h
///   normalised to corners scaled by the image's own width and height (Float); best first (ties: query order).
/// - `yolo`: an output [anchors, 4 + labels] (cx, cy, w, h in the input's pixels, then the class scores): each
///   anchor's first best score kept when above the threshold, corners in Double, class-wise non-maximum suppression
///   (a box goes when its IoU with a better kept box of the same label is above iouThreshold), at most
///   maxDetections, then mapped back through the letterbox (`Letterbox.toImage`) or the plain resize, clipped.
/// Scores are compared with the threshold in Float, as numpy compares a float32 array with a Python float.
public enum Detections {
    /// One detection: the label, its score and the box in the image's pixels, as Python's predict() gives it.
    public struct Detection {
        public let label: String
        public let labelIndex: Int
        public let score: Double
        public let xmin: Double, ymin: Double, xmax: Double, ymax: Double
    }

    /// predict()'s options; a nil threshold is the format's default (detr 0.5, yolo 0.25).
    public struct Options {
        public var threshold: Double?
        public var iouThreshold = 0.7
        public var maxDetections = 300

        public init(threshold: Double? = nil, iouThreshold: Double = 0.7, maxDetections: Int = 300) {
            self.threshold = threshold
            self.iouThreshold = iouThreshold
            self.maxDetections = maxDetections
        }

        func threshold(_ format: String) throws -> Double {
            let t = threshold ?? (format == "detr" ? 0.5 : 0.25)
            for (name, v) in [("threshold", t), ("iou_threshold", iouThreshold)] where !(v >= 0 && v <= 1) {
                throw BMSDKError.input("\(name) must be a number from 0 to 1, got \(v)")
            }
            guard maxDetections >= 1 else { throw BMSDKError.input("max_detections must be positive, got \(maxDetections)") }
            return t
        }
    }

    /// DETR/YOLOS: logits [queries, classes] (the last: no object) and boxes [queries, 4], for an image of height x width.
    public static func detr(logits: [Float], boxes: [Float], queries: Int, height: Int, width: Int, labels: [String]?,
                            options: Options = Options()) throws -> [Detection] {
        let threshold = Float(try options.threshold("detr"))
        let classes = logits.count / queries, w = Float(width), h = Float(height)
        var found: [Detection] = []
        for q in 0..<queries {
            let probs = Array(Entities.softmax(Array(logits[q * classes..<(q + 1) * classes])).dropLast())
            let best = Entities.argmax(probs)
            guard probs[best] > threshold else { continue }
            let cx = boxes[q * 4], cy = boxes[q * 4 + 1], bw = boxes[q * 4 + 2], bh = boxes[q * 4 + 3]
            let x0: Float = (cx - 0.5 * bw) * w, y0: Float = (cy - 0.5 * bh) * h
            let x1: Float = (cx + 0.5 * bw) * w, y1: Float = (cy + 0.5 * bh) * h
            found.append(Detection(label: name(labels, best), labelIndex: best, score: Double(probs[best]),
                                   xmin: Double(x0), ymin: Double(y0), xmax: Double(x1), ymax: Double(y1)))
        }
        let order = found.indices.sorted { found[$0].score != found[$1].score ? found[$0].score > found[$1].score : $0 < $1 }
        return order.prefix(options.maxDetections).map { found[$0] }
    }

    /// A YOLO-style output [anchors, 4 + labels] of a modelHeight x modelWidth input, for an image of height x width
    /// that was letterboxed (or, letterbox false, resized straight) to the input.
    public static func yolo(raw: [Float], anchors: Int, modelHeight: Int, modelWidth: Int, height: Int, width: Int,
                            letterbox: Bool = true, labels: [String]?, options: Options = Options()) throws -> [Detection] {
        let threshold = Float(try options.threshold("yolo"))
        let stride = raw.count / anchors
        var boxes: [[Double]] = [], scores: [Double] = [], classes: [Int] = []
        for a in 0..<anchors {
            let row = a * stride
            var best = 4
            for c in 5..<stride where raw[row + c] > raw[row + best] { best = c }
            guard raw[row + best] > threshold else { continue }
            let cx = Double(raw[row]), cy = Double(raw[row + 1]), w = Double(raw[row + 2]), h = Double(raw[row + 3])
            boxes.append([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h])
            scores.append(Double(raw[row + best]))
            classes.append(best - 4)
        }
        let kept = nms(boxes: boxes, scores: scores, labels: classes, iouThreshold: options.iouThreshold)
        let box = Letterbox(height: modelHeight, width: modelWidth, imageHeight: height, imageWidth: width)
        let sy = Double(height) / Double(modelHeight), sx = Double(width) / Double(modelWidth)
        return kept.prefix(options.maxDetections).map { i in
            let b = boxes[i]
            let m = letterbox ? box.toImage(b)
                : Letterbox.clip([b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy], height: height, width: width)
            return Detection(label: name(labels, classes[i]), labelIndex: classes[i], score: scores[i],
                             xmin: m[0], ymin: m[1], xmax: m[2], ymax: m[3])
        }
    }

    /// Class-wise non-maximum suppression (torchvision's batched_nms): the indices kept, best score first (ties:
    /// index order); a box is dropped when its IoU with a better kept box of the same label is above iouThreshold.
    public static func nms(boxes: [[Double]], scores: [Double], labels: [Int], iouThreshold: Double) -> [Int] {
        let order = boxes.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
        var suppressed = [Bool](repeating: false, count: order.count), keep: [Int] = []
        for i in order.indices where !suppressed[i] {
            keep.append(order[i])
            for j in order.indices where labels[order[i]] == labels[order[j]]
                && iou(boxes[order[i]], boxes[order[j]]) > iouThreshold {
                suppressed[j] = true
            }
        }
        return keep
    }

    /// The IoU of two boxes (corners), 0 when their union is empty, as object_detection.iou_matrix.
    public static func iou(_ a: [Double], _ b: [Double]) -> Double {
        let inter = max(min(a[2], b[2]) - max(a[0], b[0]), 0) * max(min(a[3], b[3]) - max(a[1], b[1]), 0)
        let union = max(a[2] - a[0], 0) * max(a[3] - a[1], 0) + max(b[2] - b[0], 0) * max(b[3] - b[1], 0) - inter
        return union > 0 ? inter / union : 0
    }

    static func name(_ labels: [String]?, _ index: Int) -> String {
        labels.map { $0[index] } ?? "LABEL_\(index)"
    }
}
