/// A format `densekit convert` writes, told by the output's extension or `--to`. Each format's folder
/// defines its targets (`ConversionTarget.onnx` beside the ONNX writer); `all` lists them.
public struct ConversionTarget: Sendable, Equatable, CustomStringConvertible {
    /// The name `--to` takes and `--json` reports (`dnk`, `keras-h5`, ...).
    public let name: String
    /// The extension a file of this format has.
    public let fileExtension: String
    /// The writer, with the settings only some writers take.
    package let makeWriter: @Sendable (Options) -> any ModelWriter

    package init(name: String, fileExtension: String, makeWriter: @escaping @Sendable (Options) -> any ModelWriter) {
        self.name = name
        self.fileExtension = fileExtension
        self.makeWriter = makeWriter
    }

    /// Every target, in the order messages list them.
    public static let all: [ConversionTarget] = [.dnk, .onnx, .safetensors, .kerasH5, .kerasWeightsH5, .tflite]

    public static func == (lhs: ConversionTarget, rhs: ConversionTarget) -> Bool { lhs.name == rhs.name }

    public var description: String { name }

    /// The target `--to` names.
    public init?(name: String) {
        guard let target = Self.all.first(where: { $0.name == name }) else { return nil }
        self = target
    }

    /// The format a path's extension names (`.weights.h5` before `.h5`), case-insensitively.
    public init?(path: String) {
        let name = path.lowercased()
        guard
            let target = Self.all.sorted(by: { $0.fileExtension.count > $1.fileExtension.count })
                .first(where: { name.hasSuffix($0.fileExtension) && name.count > $0.fileExtension.count })
        else { return nil }
        self = target
    }

    /// "dnk (.dnk), onnx (.onnx), ..." for messages.
    public static var list: String {
        all.map { "\($0.name) (\($0.fileExtension))" }.joined(separator: ", ")
    }

    /// The target for `output`: `chosen` (`--to`) when given, which must agree with a known extension.
    public static func resolve(output: String, to chosen: ConversionTarget?) throws -> ConversionTarget {
        let byExtension = ConversionTarget(path: output)
        guard let chosen else {
            guard let byExtension else {
                throw UnsupportedTarget(
                    "", "the extension names no format DenseKit writes: use one of \(list), or --to")
            }
            return byExtension
        }
        if let byExtension, byExtension != chosen {
            throw UnsupportedTarget(
                "",
                "--to \(chosen.name), but the extension \(byExtension.fileExtension) is \(byExtension.name)'s")
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

    public func writer(_ options: Options = Options()) -> any ModelWriter { makeWriter(options) }
}
