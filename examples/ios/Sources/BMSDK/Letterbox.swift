import Foundation

/// ultralytics' letterbox as bmsdk's Python side does it (image_ops.letterbox, object_detection.unletterbox): an
/// image of imageHeight x imageWidth is scaled by gain = min(height / imageHeight, width / imageWidth) to
/// round(imageWidth * gain) x round(imageHeight * gain) (Python's round: half to even), pasted on a height x width
/// canvas of the pad value at (round(dw - 0.1), round(dh - 0.1)), dw and dh half the padding; a box in the canvas'
/// pixels maps back to the image's by ultralytics' `scale_boxes`. The scaling itself is the app's (the platform's
/// bilinear filter; bmsdk's Python side uses Pillow's): `pad` takes pixels already at resizedHeight x resizedWidth.
public struct Letterbox {
    public let height: Int, width: Int
    public let imageHeight: Int, imageWidth: Int
    public let gain: Double
    public let resizedHeight: Int, resizedWidth: Int
    public let top: Int, left: Int

    /// The letterbox of an image of imageHeight x imageWidth (at least 1 x 1) onto the model's height x width.
    public init(height: Int, width: Int, imageHeight: Int, imageWidth: Int) {
        self.height = height
        self.width = width
        self.imageHeight = imageHeight
        self.imageWidth = imageWidth
        gain = min(Double(height) / Double(imageHeight), Double(width) / Double(imageWidth))
        resizedWidth = Int((Double(imageWidth) * gain).rounded(.toNearestOrEven))
        resizedHeight = Int((Double(imageHeight) * gain).rounded(.toNearestOrEven))
        top = Int((Double(height - resizedHeight) / 2 - 0.1).rounded(.toNearestOrEven))
        left = Int((Double(width - resizedWidth) / 2 - 0.1).rounded(.toNearestOrEven))
    }

    /// The model's HxWxC input: `resized` (resizedHeight x resizedWidth x channels bytes) on the pad value.
    public func pad(_ resized: [UInt8], channels: Int, padValue: UInt8 = 114) throws -> [UInt8] {
        guard resized.count == resizedHeight * resizedWidth * channels else {
            throw BMSDKError.input("the letterbox takes \(resizedHeight)x\(resizedWidth)x\(channels) pixels, got \(resized.count) values")
        }
        var canvas = [UInt8](repeating: padValue, count: height * width * channels)
        for y in 0..<resizedHeight where (0..<height).contains(y + top) {
            for x in 0..<resizedWidth where (0..<width).contains(x + left) {
                let from = (y * resizedWidth + x) * channels, to = ((y + top) * width + x + left) * channels
                canvas[to..<to + channels] = resized[from..<from + channels]
            }
        }
        return canvas
    }

    /// A box (xmin, ymin, xmax, ymax) in the canvas' pixels in the image's, clipped to it (ultralytics'
    /// `scale_boxes`: the padding taken from the unrounded scaled size).
    public func toImage(_ box: [Double]) -> [Double] {
        let padX = ((Double(width) - Double(imageWidth) * gain) / 2 - 0.1).rounded(.toNearestOrEven)
        let padY = ((Double(height) - Double(imageHeight) * gain) / 2 - 0.1).rounded(.toNearestOrEven)
        let out = [(box[0] - padX) / gain, (box[1] - padY) / gain, (box[2] - padX) / gain, (box[3] - padY) / gain]
        return Letterbox.clip(out, height: imageHeight, width: imageWidth)
    }

    /// x clipped to [0, width], y to [0, height].
    static func clip(_ box: [Double], height: Int, width: Int) -> [Double] {
        let w = Double(width), h = Double(height)
        return [min(max(box[0], 0), w), min(max(box[1], 0), h), min(max(box[2], 0), w), min(max(box[3], 0), h)]
    }
}
