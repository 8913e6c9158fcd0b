import Foundation

/// Errors of the on-device runtime. Each names the problem and the fix, like bmsdk's Python errors.
public enum BMSDKError: Error, CustomStringConvertible {
    case manifest(String)
    case tokenizer(String)
    case input(String)
    case unavailable(String)
    case generation(String)

    public var description: String {
        switch self {
        case .manifest(let m): return "bmsdk.json: \(m). Fix: re-create the artifact with `bmsdk convert`"
        case .tokenizer(let m): return "tokenizer: \(m). Fix: use the tokenizer.json that `bmsdk convert` put in the artifact"
        case .input(let m): return "input: \(m)"
        case .unavailable(let m): return m
        case .generation(let m): return "generation: \(m)"
        }
    }
}

/// A model input or output: a dim is a number or a name ("batch", "sequence").
public struct TensorSpec: Decodable, Equatable {
    public enum Dim: Decodable, Equatable {
        case fixed(Int)
        case named(String)

        public init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let n = try? c.decode(Int.self) { self = .fixed(n) } else { self = .named(try c.decode(String.self)) }
        }
    }

    public let name: String
    public let dtype: String
    public let shape: [Dim]
}

/// Pre-processing as bmsdk.json records it (text: tokenizer and max length; image: size, resize and centre crop,
/// scale, offset, mean/std, renormalize_std, channel order; audio: sampling rate, clip length, normalisation,
/// padding value, attention mask).
public struct Preprocessing: Decodable {
    public let kind: String?
    public let tokenizer: String?
    public let maxLength: Int?
    public let padId: Int?
    public let inputName: String?
    public let size: [Int]?
    public let channels: Int?
    public let layout: String?
    public let scale: Double?
    public let mean: [Float]?
    public let std: [Float]?
    public let resize: Resize?
    public let centerCrop: [Int]?
    public let offset: Float?
    public let renormalizeStd: [Float]?
    public let channelOrder: String?
    /// Question answering: context tokens shared by consecutive windows.
    public let stride: Int?
    public let samplingRate: Int?
    public let samples: Int?
    public let doNormalize: Bool?
    public let paddingValue: Float?
    public let attentionMask: Bool?

    enum CodingKeys: String, CodingKey {
        case kind, tokenizer, size, channels, layout, scale, mean, std, resize, offset, stride
        case maxLength = "max_length", padId = "pad_id", inputName = "input_name", centerCrop = "center_crop"
        case renormalizeStd = "renormalize_std", channelOrder = "channel_order"
        case samples, samplingRate = "sampling_rate", doNormalize = "do_normalize", paddingValue = "padding_value"
        case attentionMask = "attention_mask"
    }
}

/// How the image is resized before the centre crop: "exact" to size [h, w], "shortest_edge" to size n (aspect
/// kept), "letterbox" (scaled to fit size [h, w], then padded with `padValue`: see Letterbox) or "none"; `resample`
/// is the Pillow filter bmsdk uses (2 bilinear, 3 bicubic, 0 nearest...).
public struct Resize: Decodable {
    public let mode: String
    public let size: [Int]
    public let resample: Int?
    public let padValue: Int?

    enum CodingKeys: String, CodingKey { case mode, size, resample, padValue = "pad_value" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        mode = try c.decode(String.self, forKey: .mode)
        resample = try c.decodeIfPresent(Int.self, forKey: .resample)
        padValue = try c.decodeIfPresent(Int.self, forKey: .padValue)
        if let pair = try? c.decode([Int].self, forKey: .size) {
            size = pair
        } else if let edge = try c.decodeIfPresent(Int.self, forKey: .size) {
            size = [edge]
        } else {
            size = []
        }
    }
}

/// Post-processing: which output holds the logits, the class names, and pooling for embeddings.
public struct Postprocessing: Decodable {
    public let output: String?
    public let labels: [String]?
    public let softmax: Bool?
    public let pooling: String?
    public let normalize: Bool?
    /// Token classification: how tokens become entities, and the labels left out.
    public let aggregationStrategy: String?
    public let ignoreLabels: [String]?
    /// Question answering defaults.
    public let topK: Int?
    public let maxAnswerLen: Int?
    public let handleImpossibleAnswer: Bool?
    public let alignToWords: Bool?
    /// Object detection: "detr" or "yolo", the DETR boxes output, and whether YOLO boxes go back through a letterbox.
    public let format: String?
    public let boxes: String?
    public let letterbox: Bool?

    enum CodingKeys: String, CodingKey {
        case output, labels, softmax, pooling, normalize, format, boxes, letterbox
        case aggregationStrategy = "aggregation_strategy", ignoreLabels = "ignore_labels", topK = "top_k"
        case maxAnswerLen = "max_answer_len", handleImpossibleAnswer = "handle_impossible_answer", alignToWords = "align_to_words"
    }

    /// The question-answering options this manifest records (defaults where it records none).
    public var answerOptions: AnswerSpans.Options {
        var o = AnswerSpans.Options()
        if let v = topK { o.topK = v }
        if let v = maxAnswerLen { o.maxAnswerLen = v }
        if let v = handleImpossibleAnswer { o.handleImpossibleAnswer = v }
        if let v = alignToWords { o.alignToWords = v }
        return o
    }
}

/// The part of `bmsdk.json` a device needs.
public struct Manifest: Decodable {
    public static let supportedSchema = 2  // v2 (typed report sections) reads the same JSON as v1

    public let schemaVersion: Int
    public let name: String
    public let task: String
    public let target: String
    public let precision: String
    public let modelFile: String
    public let inputs: [TensorSpec]
    public let outputs: [TensorSpec]
    public let preprocessing: Preprocessing
    public let postprocessing: Postprocessing

    enum CodingKeys: String, CodingKey {
        case name, task, target, precision, inputs, outputs, preprocessing, postprocessing
        case schemaVersion = "schema_version", modelFile = "model_file"
    }

    public static func load(folder: URL) throws -> Manifest {
        let url = folder.appendingPathComponent("bmsdk.json")
        guard let data = try? Data(contentsOf: url) else { throw BMSDKError.manifest("\(url.path) is missing") }
        let manifest: Manifest
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: data)
        } catch {
            throw BMSDKError.manifest("cannot read \(url.path): \(error)")
        }
        guard manifest.schemaVersion <= supportedSchema else {
            throw BMSDKError.manifest("schema version \(manifest.schemaVersion) is newer than this BMSDK (\(supportedSchema))")
        }
        return manifest
    }
}
