import Foundation

/// A model input: its shape and values (token ids as Int32, pixels as Float32: what CoreML takes; the text
/// generator's step graph takes its ids, positions and mask as Int64).
public struct Tensor: Equatable {
    public enum Values: Equatable {
        case int32([Int32])
        case float32([Float])
        case int64([Int64])
    }

    public let shape: [Int]
    public let values: Values
}

/// Runs feeds through a model and returns each output flattened to floats.
public protocol Runner {
    func run(_ feeds: [String: Tensor]) throws -> [String: [Float]]
}

/// An artifact folder written by `bmsdk convert --target coreml`: manifest, pre-processing, model and post-processing.
public final class BMSDKModel {
    public let folder: URL
    public let manifest: Manifest
    public let tokenizer: TextTokenizer?
    public let image: ImagePreprocessor?
    public let audio: AudioPreprocessor?
    private let runner: Runner?

    /// `runner` defaults to CoreML (where it exists) on the artifact's model.mlpackage.
    public init(folder: URL, runner: Runner? = nil) throws {
        self.folder = folder
        manifest = try Manifest.load(folder: folder)
        let pre = manifest.preprocessing
        if pre.kind == "text", let file = pre.tokenizer {
            tokenizer = try TextTokenizer(tokenizerJSON: folder.appendingPathComponent(file), maxLength: pre.maxLength ?? 128)
        } else {
            tokenizer = nil
        }
        image = pre.kind == "image" ? try ImagePreprocessor(pre) : nil
        audio = pre.kind == "audio" ? try AudioPreprocessor(pre, inputs: manifest.inputs) : nil
        if let runner {
            self.runner = runner
        } else {
            #if canImport(CoreML)
            self.runner = try CoreMLRunner(modelURL: folder.appendingPathComponent(manifest.modelFile))
            #else
            self.runner = nil
            #endif
        }
    }

    /// The feeds for one text, named and shaped as the manifest's inputs (batch 1, no padding).
    public func feeds(text: String) throws -> [String: Tensor] {
        guard let tokenizer else { throw BMSDKError.input("\(manifest.name) does not take text") }
        let e = tokenizer.encode(text)
        let columns = ["input_ids": e.inputIds, "attention_mask": e.attentionMask, "token_type_ids": e.tokenTypeIds]
        var feeds: [String: Tensor] = [:]
        for spec in manifest.inputs {
            guard let column = columns[spec.name] else { throw BMSDKError.input("unknown text input \(spec.name)") }
            feeds[spec.name] = Tensor(shape: [1, column.count], values: .int32(column.map(Int32.init)))
        }
        return feeds
    }

    /// The feeds for one image of the model's size, as height x width x channels bytes.
    public func feeds(pixels: [UInt8]) throws -> [String: Tensor] {
        guard let image else { throw BMSDKError.input("\(manifest.name) does not take images") }
        let name = manifest.preprocessing.inputName ?? manifest.inputs[0].name
        let shape = image.layout == "NCHW" ? [1, image.channels, image.height, image.width] : [1, image.height, image.width, image.channels]
        return [name: Tensor(shape: shape, values: .float32(try image.tensor(pixels: pixels)))]
    }

    /// The feeds for one mono clip of float samples at `rate` Hz (the model's rate: resample first).
    public func feeds(samples: [Float], rate: Int) throws -> [String: Tensor] {
        guard let audio else { throw BMSDKError.input("\(manifest.name) does not take audio") }
        let f = try audio.features(samples: samples, rate: rate)
        var feeds = [audio.inputName: Tensor(shape: [1, audio.samples], values: .float32(f.inputValues))]
        if let mask = f.attentionMask {
            feeds["attention_mask"] = Tensor(shape: [1, audio.samples], values: .int32(mask.map(Int32.init)))
        }
        return feeds
    }

    /// Classify feeds; also returns the model call's latency in milliseconds.
    public func classify(_ feeds: [String: Tensor]) throws -> (prediction: Prediction, latencyMs: Double) {
        guard let runner else { throw BMSDKError.unavailable("CoreML is not available on this platform: pass a Runner") }
        let start = DispatchTime.now().uptimeNanoseconds
        let outputs = try runner.run(feeds)
        let latency = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        let name = manifest.postprocessing.output ?? manifest.outputs[0].name
        guard let logits = outputs[name] else { throw BMSDKError.input("the model returned no output \(name)") }
        return (Postprocessor.classify(logits: logits, labels: manifest.postprocessing.labels), latency)
    }

    /// The feeds of one span encoding (a text, or one window of a question + context pair).
    public func feeds(encoding e: SpanEncoding) throws -> [String: Tensor] {
        let columns = ["input_ids": e.ids, "attention_mask": e.attentionMask, "token_type_ids": e.typeIds]
        var feeds: [String: Tensor] = [:]
        for spec in manifest.inputs {
            guard let column = columns[spec.name] else { throw BMSDKError.input("unknown text input \(spec.name)") }
            feeds[spec.name] = Tensor(shape: [1, column.count], values: .int32(column.map(Int32.init)))
        }
        return feeds
    }

    private func run(_ feeds: [String: Tensor], _ name: String) throws -> [Float] {
        guard let runner else { throw BMSDKError.unavailable("CoreML is not available on this platform: pass a Runner") }
        guard let values = try runner.run(feeds)[name] else { throw BMSDKError.input("the model returned no output \(name)") }
        return values
    }

    /// Token classification (NER): the entities of `text`, aggregated by `strategy` (default: the manifest's,
    /// else simple), labels in `ignore` (default: the manifest's, else ["O"]) left out.
    public func entities(text: String, strategy: String? = nil, ignore: [String]? = nil) throws -> [Entities.Entity] {
        guard let tokenizer, let labels = manifest.postprocessing.labels else {
            throw BMSDKError.input("\(manifest.name) is not a token classifier with labels")
        }
        let enc = try tokenizer.encodeWithOffsets(text)
        let flat = try run(feeds(encoding: enc), manifest.postprocessing.output ?? "logits")
        guard flat.count >= enc.ids.count * labels.count else { throw BMSDKError.input("logits of \(flat.count) values for \(enc.ids.count) tokens") }
        let logits = (0..<enc.ids.count).map { Array(flat[$0 * labels.count..<($0 + 1) * labels.count]) }
        return try Entities.of(text: text, encoding: enc, logits: logits, labels: labels, tokenizer: tokenizer,
                               strategy: strategy ?? manifest.postprocessing.aggregationStrategy ?? "simple",
                               ignore: ignore ?? manifest.postprocessing.ignoreLabels ?? ["O"])
    }

    /// Extractive question answering: the best answers (at most options.topK) to `question` in `context`, over
    /// every window of a long context (one model call per window).
    public func answers(question: String, context: String, options: AnswerSpans.Options? = nil) throws -> [AnswerSpans.Answer] {
        guard let tokenizer else { throw BMSDKError.input("\(manifest.name) does not take text") }
        let windows = try tokenizer.encodePair(question: question, context: context, stride: manifest.preprocessing.stride ?? 0)
        var starts: [[Float]] = [], ends: [[Float]] = []
        for w in windows {
            let f = try feeds(encoding: w)
            starts.append(try run(f, "start_logits"))
            ends.append(try run(f, "end_logits"))
        }
        return try AnswerSpans.answers(context: context, windows: windows, startLogits: starts, endLogits: ends,
                                       options: options ?? manifest.postprocessing.answerOptions)
    }

    public func predict(text: String) throws -> (prediction: Prediction, latencyMs: Double) {
        try classify(feeds(text: text))
    }

    public func predict(pixels: [UInt8]) throws -> (prediction: Prediction, latencyMs: Double) {
        try classify(feeds(pixels: pixels))
    }

    public func predict(samples: [Float], rate: Int) throws -> (prediction: Prediction, latencyMs: Double) {
        try classify(feeds(samples: samples, rate: rate))
    }

    /// Semantic segmentation of one image of the model's size (height x width x channels bytes): the mask at
    /// `height` x `width` (the image's size before the app resized it; default the model's input size).
    public func segment(pixels: [UInt8], height: Int? = nil, width: Int? = nil) throws -> Segmentation.Result {
        guard let image else { throw BMSDKError.input("\(manifest.name) does not take images") }
        let name = manifest.postprocessing.output ?? manifest.outputs[0].name
        guard let spec = manifest.outputs.first(where: { $0.name == name }), spec.shape.count == 4,
              case .fixed(let h) = spec.shape[2], case .fixed(let w) = spec.shape[3] else {
            throw BMSDKError.manifest("the output \(name) is not [batch, labels, height, width] of fixed height and width")
        }
        let logits = try run(feeds(pixels: pixels), name)
        return Segmentation.of(logits: logits, h: h, w: w, height: height ?? image.height, width: width ?? image.width,
                               labels: manifest.postprocessing.labels)
    }

    /// Object detection of an image of `height` x `width`, given as the app resized it: to
    /// `image.resizedSize(height:width:)` (for a letterbox the scaled image, padded here with the manifest's pad
    /// value). The detections as Python's `predict()` gives them, boxes in the image's own pixels.
    public func detect(pixels resized: [UInt8], height: Int, width: Int,
                       options: Detections.Options = Detections.Options()) throws -> [Detections.Detection] {
        guard let image, let runner else { throw BMSDKError.input("\(manifest.name) does not take images or has no runner") }
        let post = manifest.postprocessing, format = post.format ?? "yolo"
        guard format == "yolo" || format == "detr" else {
            throw BMSDKError.manifest("bmsdk.json names detection format \(format): this package reads detr, yolo")
        }
        var pixels = resized
        if let resize = image.resize, resize.mode == "letterbox" {
            let box = Letterbox(height: image.height, width: image.width, imageHeight: height, imageWidth: width)
            pixels = try box.pad(resized, channels: image.channels, padValue: UInt8(resize.padValue ?? 114))
        }
        let outputs = try runner.run(feeds(pixels: pixels))
        let name = post.output ?? manifest.outputs[0].name
        guard let first = outputs[name] else { throw BMSDKError.input("the model returned no output \(name)") }
        if format == "detr" {
            guard let boxes = outputs[post.boxes ?? "pred_boxes"] else { throw BMSDKError.input("the model returned no boxes") }
            return try Detections.detr(logits: first, boxes: boxes, queries: boxes.count / 4, height: height, width: width,
                                       labels: post.labels, options: options)
        }
        var stride = (post.labels?.count ?? 0) + 4  // [batch, anchors, 4 + labels]
        if let spec = manifest.outputs.first(where: { $0.name == name }), spec.shape.count == 3,
           case .fixed(let n) = spec.shape[2] { stride = n }
        return try Detections.yolo(raw: first, anchors: first.count / stride, modelHeight: image.height, modelWidth: image.width,
                                   height: height, width: width, letterbox: post.letterbox ?? true, labels: post.labels,
                                   options: options)
    }
}
