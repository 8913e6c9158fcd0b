import Foundation

/// A prediction of a classifier: the top label, its probability, and every class's probability.
public struct Prediction: Equatable {
    public let label: String
    public let index: Int
    public let score: Float
    public let scores: [String: Float]
}

/// Pixels -> the model's input tensor, as bmsdk's Python ImagePreprocessor does it: pixel * scale (in double) +
/// offset, then (x - mean) / std and / renormalize_std where present, in Float; channels reversed for "BGR"; laid
/// out NCHW or NHWC. The image must already have the model's size: the app scales it to `resizedSize` with its own
/// filter and crops the model's size at `cropOrigin` (zero padding where negative), as the manifest's `resize` and
/// `center_crop` say.
public struct ImagePreprocessor {
    public let height: Int
    public let width: Int
    public let channels: Int
    public let layout: String
    public let scale: Double
    public let offset: Float
    public let mean: [Float]
    public let std: [Float]
    public let renormalizeStd: [Float]?
    public let bgr: Bool
    public let resize: Resize?
    public let centerCrop: [Int]?

    public init(_ config: Preprocessing) throws {
        guard config.kind == "image", let size = config.size, size.count == 2 else {
            throw BMSDKError.manifest("pre-processing is not an image configuration with a size")
        }
        height = size[0]
        width = size[1]
        channels = config.channels ?? 3
        layout = config.layout ?? "NCHW"
        scale = config.scale ?? 1 / 255
        offset = config.offset ?? 0
        mean = config.mean ?? Array(repeating: 0, count: channels)
        std = config.std ?? Array(repeating: 1, count: channels)
        renormalizeStd = config.renormalizeStd
        bgr = config.channelOrder == "BGR"
        resize = config.resize
        centerCrop = config.centerCrop
    }

    /// [height, width] to scale an image to before the centre crop (transformers' arithmetic: for a shortest-edge
    /// resize the long side is truncated).
    public func resizedSize(height imageHeight: Int, width imageWidth: Int) -> [Int] {
        guard let resize = resize else { return [height, width] }  // a bmsdk 0.1 manifest: straight to the size
        switch resize.mode {
        case "none": return [imageHeight, imageWidth]
        case "exact": return resize.size
        case "letterbox":  // the scaled image, before the padding
            let box = Letterbox(height: height, width: width, imageHeight: imageHeight, imageWidth: imageWidth)
            return [box.resizedHeight, box.resizedWidth]
        default:
            let edge = resize.size[0]
            let longSide = Int(Double(edge) * Double(max(imageHeight, imageWidth)) / Double(min(imageHeight, imageWidth)))
            return imageWidth <= imageHeight ? [longSide, edge] : [edge, longSide]
        }
    }

    /// [top, left] of the model-size centre crop in a resized image (negative: that many rows/columns of zeros).
    public func cropOrigin(height resizedHeight: Int, width resizedWidth: Int) -> [Int] {
        guard let crop = centerCrop else { return [0, 0] }
        func floorHalf(_ v: Int) -> Int { v >= 0 ? v / 2 : -((-v + 1) / 2) }
        return [floorHalf(resizedHeight - crop[0]), floorHalf(resizedWidth - crop[1])]
    }

    /// `pixels`: height x width x channels bytes, row-major (what `bmsdk export-vectors` calls pixels_hwc).
    public func tensor(pixels: [UInt8]) throws -> [Float] {
        guard pixels.count == height * width * channels else {
            throw BMSDKError.input("expected \(height)x\(width)x\(channels) pixels, got \(pixels.count) values")
        }
        var out = [Float](repeating: 0, count: pixels.count)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<channels {
                    let from = bgr ? channels - 1 - c : c  // BGR: output channel c is input channel 2 - c
                    var value = Float(Double(pixels[(y * width + x) * channels + from]) * scale) + offset
                    value = (value - mean[from]) / std[from]
                    if let again = renormalizeStd { value = value / again[from] }
                    let index = layout == "NCHW" ? (c * height + y) * width + x : (y * width + x) * channels + c
                    out[index] = value
                }
            }
        }
        return out
    }
}

public enum Postprocessor {
    /// Softmax in double precision (as the Python side does), then the top class.
    public static func classify(logits: [Float], labels: [String]?) -> Prediction {
        let maxLogit = Double(logits.max() ?? 0)
        let exps = logits.map { exp(Double($0) - maxLogit) }
        let total = exps.reduce(0, +)
        let probs = exps.map { Float($0 / total) }
        let names = labels ?? probs.indices.map(String.init)
        let best = probs.indices.max { probs[$0] < probs[$1] } ?? 0
        return Prediction(label: names[best], index: best, score: probs[best],
                          scores: Dictionary(uniqueKeysWithValues: zip(names, probs)))
    }

    /// Sentence embedding: mean of the token vectors where the mask is 1, optionally L2-normalised.
    public static func meanPool(hidden: [Float], tokens: Int, dim: Int, mask: [Int], normalize: Bool) -> [Float] {
        var sum = [Float](repeating: 0, count: dim)
        var count: Float = 0
        for t in 0..<tokens where mask[t] != 0 {
            for d in 0..<dim { sum[d] += hidden[t * dim + d] }
            count += 1
        }
        var pooled = sum.map { $0 / max(count, 1e-9) }
        if normalize {
            let norm = max(pooled.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
            pooled = pooled.map { $0 / norm }
        }
        return pooled
    }
}
