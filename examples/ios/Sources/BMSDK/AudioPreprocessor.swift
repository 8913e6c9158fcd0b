import Foundation

/// Waveform pre-processing as bmsdk's Python side does it (transformers' Wav2Vec2FeatureExtractor), from the
/// artifact's `preprocessing` of kind "audio": mono float samples in [-1, 1] at the model's `sampling_rate`, trimmed
/// or padded with `padding_value` to `samples`, then (`do_normalize`) each clip brought to zero mean and unit variance
/// (1e-7 added to the variance) over its real samples when the model takes an attention mask, over the whole padded
/// clip when it does not. Decoding and resampling are the app's (AVFoundation: `AVAudioFile`, `AVAudioConverter`):
/// a clip at another rate is refused.
public struct AudioPreprocessor {
    static let normEpsilon: Float = 1e-7

    /// The model inputs of one clip: `input_values` and, when the model takes one, its attention mask.
    public struct Features {
        public let inputValues: [Float]
        public let attentionMask: [Int]?
    }

    public let inputName: String
    public let samplingRate: Int
    public let samples: Int
    public let doNormalize: Bool
    public let paddingValue: Float
    /// Whether the model takes an attention mask (an input of that name, not switched off in the manifest).
    public let mask: Bool

    public init(_ config: Preprocessing, inputs: [TensorSpec]) throws {
        guard config.kind == "audio", let rate = config.samplingRate, let samples = config.samples else {
            throw BMSDKError.manifest("pre-processing is not an audio configuration with sampling_rate and samples")
        }
        inputName = config.inputName ?? "input_values"
        samplingRate = rate
        self.samples = samples
        doNormalize = config.doNormalize ?? true
        paddingValue = config.paddingValue ?? 0
        mask = inputs.contains { $0.name == "attention_mask" } && config.attentionMask != false
    }

    /// One mono clip at `rate` Hz (must be the model's) to the model's inputs.
    public func features(samples clip: [Float], rate: Int) throws -> Features {
        guard rate == samplingRate else {
            throw BMSDKError.input("the audio is at \(rate) Hz but the model takes \(samplingRate) Hz: resample it first "
                                   + "(AVAudioConverter; bmsdk's Python side uses scipy's resample_poly)")
        }
        guard !clip.isEmpty else { throw BMSDKError.input("the clip holds no samples") }
        let length = min(clip.count, samples)
        var values = Array(clip.prefix(length)) + Array(repeating: paddingValue, count: samples - length)
        if doNormalize { normalize(&values, real: mask ? length : samples) }
        let attention = mask ? Array(repeating: 1, count: length) + Array(repeating: 0, count: samples - length) : nil
        return Features(inputValues: values, attentionMask: attention)
    }

    /// Zero mean, unit variance over values[0..<real]; with a mask the padding after `real` keeps padding_value.
    private func normalize(_ values: inout [Float], real: Int) {
        let mean = Float(values[0..<real].reduce(0.0) { $0 + Double($1) } / Double(real))
        let squares = values[0..<real].reduce(0.0) { sum, v in
            let d = Double(v - mean)
            return sum + d * d
        }
        let std = (Float(squares / Double(real)) + Self.normEpsilon).squareRoot()
        for i in values.indices {
            values[i] = i < real ? (values[i] - mean) / std : paddingValue
        }
    }
}
