/// The formats `densekit convert` writes, told by the output's extension or `--to`.
public enum ConversionTarget: String, CaseIterable, Sendable {
    case dnk
    case onnx
    case safetensors
    /// A Keras 2 (tf_keras) weights `.h5`, the layout of the published pretrained files.
    case kerasH5 = "keras-h5"
    /// A Keras 3 `.weights.h5`.
    case kerasWeightsH5 = "keras-weights-h5"

    /// The extension a file of this format has.
    public var fileExtension: String {
        switch self {
        case .dnk: return ".dnk"
        case .onnx: return ".onnx"
        case .safetensors: return ".safetensors"
        case .kerasH5: return ".h5"
        case .kerasWeightsH5: return ".weights.h5"
        }
    }

    /// The format a path's extension names (`.weights.h5` before `.h5`), case-insensitively.
    public init?(path: String) {
        let name = path.lowercased()
        guard
            let target = Self.allCases.sorted(by: { $0.fileExtension.count > $1.fileExtension.count })
                .first(where: { name.hasSuffix($0.fileExtension) && name.count > $0.fileExtension.count })
        else { return nil }
        self = target
    }

    /// "dnk (.dnk), onnx (.onnx), ..." for messages.
    public static var list: String {
        allCases.map { "\($0.rawValue) (\($0.fileExtension))" }.joined(separator: ", ")
    }

    /// The target for `output`, from `--to` when given (which must agree with a known extension).
    public static func resolve(output: String, to: String?) throws -> ConversionTarget {
        let byExtension = ConversionTarget(path: output)
        guard let to else {
            guard let byExtension else {
                throw UnsupportedTarget(
                    "", "the extension names no format DenseKit writes: use one of \(list), or --to")
            }
            return byExtension
        }
        guard let chosen = ConversionTarget(rawValue: to) else {
            throw UnsupportedTarget("", "--to '\(to)' is not a format DenseKit writes: it takes one of \(list)")
        }
        if let byExtension, byExtension != chosen {
            throw UnsupportedTarget(
                "",
                "--to \(chosen.rawValue), but the extension \(byExtension.fileExtension) is \(byExtension.rawValue)'s")
        }
        return chosen
    }

    /// Settings only some writers take.
    public struct Options: Sendable {
        /// ONNX opset, 13 to 21.
        public var opset = ONNXModelWriter.defaultOpset
        /// ONNX: the BatchNorms that follow a conv folded into it.
        public var foldBatchNorm = false
        public init() {}
    }

    public func writer(_ options: Options = Options()) -> any ModelWriter {
        switch self {
        case .dnk: return DNKModelWriter()
        case .onnx: return ONNXModelWriter(opset: options.opset, foldBatchNorm: options.foldBatchNorm)
        case .safetensors: return SafetensorsModelWriter()
        case .kerasH5: return KerasModelWriter(layout: .keras2Weights)
        case .kerasWeightsH5: return KerasModelWriter(layout: .keras3Weights)
        }
    }
}
