#if canImport(CoreML)
import CoreML
import Foundation

/// Runs a compiled `model.mlpackage` with CoreML. Compute units: .all (default), .cpuOnly, .cpuAndGPU, .cpuAndNeuralEngine.
public final class CoreMLRunner: Runner {
    private let model: MLModel

    public init(modelURL: URL, computeUnits: MLComputeUnits = .all) throws {
        let compiled = try MLModel.compileModel(at: modelURL)
        let configuration = MLModelConfiguration()
        configuration.computeUnits = computeUnits
        model = try MLModel(contentsOf: compiled, configuration: configuration)
    }

    public func run(_ feeds: [String: Tensor]) throws -> [String: [Float]] {
        var values: [String: MLFeatureValue] = [:]
        for (name, tensor) in feeds {
            values[name] = MLFeatureValue(multiArray: try Self.multiArray(tensor))
        }
        let result = try model.prediction(from: MLDictionaryFeatureProvider(dictionary: values))
        var outputs: [String: [Float]] = [:]
        for name in result.featureNames {
            guard let array = result.featureValue(for: name)?.multiArrayValue else { continue }
            outputs[name] = (0..<array.count).map { array[$0].floatValue }
        }
        return outputs
    }

    static func multiArray(_ tensor: Tensor) throws -> MLMultiArray {
        let shape = tensor.shape.map { NSNumber(value: $0) }
        switch tensor.values {
        case .int32(let ints):
            let array = try MLMultiArray(shape: shape, dataType: .int32)
            for (i, v) in ints.enumerated() { array[i] = NSNumber(value: v) }
            return array
        case .float32(let floats):
            let array = try MLMultiArray(shape: shape, dataType: .float32)
            for (i, v) in floats.enumerated() { array[i] = NSNumber(value: v) }
            return array
        case .int64(let longs):  // MLMultiArray has no int64: CoreML models take ids and masks as int32
            let array = try MLMultiArray(shape: shape, dataType: .int32)
            for (i, v) in longs.enumerated() { array[i] = NSNumber(value: Int32(clamping: v)) }
            return array
        }
    }
}
#endif
