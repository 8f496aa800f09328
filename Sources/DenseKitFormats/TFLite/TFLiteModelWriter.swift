import DenseKitGraph
import Foundation

/// Writes a `.tflite` as TensorFlow Lite's converter writes a Keras DenseNet (`TFLiteGraphBuilder`): a float32 NHWC
/// input `input` of the model's size (batch 1, resizable), the BatchNorms that follow a conv folded into it, the
/// head as the source has it, and FlatBuffers' own builder for the bytes. `--dtype f16` stores every float constant
/// as float16 behind a DEQUANTIZE operator, as the converter's float16 quantisation does. The provenance is
/// the model's `description`.
public struct TFLiteModelWriter: ModelWriter {
    public let format = "tflite"
    /// The schema version TensorFlow Lite's converter writes.
    static let schemaVersion = 3

    public init() {}

    public func prepare(_ net: DenseNet, dtype: DType) throws -> (net: DenseNet, conventions: [Convention]) {
        try require(dtype, in: [.f32, .f16])
        for (name, pool) in net.pools {
            if pool.kind == .max, pool.pads != [0, 0, 0, 0], !(name == "stem" && net.stem.relu) {
                throw UnsupportedTarget(
                    format, "\(name): a padded max pool that does not follow a ReLU (TFLite pads with zeros)")
            }
            if pool.kind == .average, pool.pads != [0, 0, 0, 0] {
                throw UnsupportedTarget(format, "\(name): a padded average pool")
            }
        }
        var (prepared, folded) = net.foldingBatchNorms()
        var conventions: [Convention] = []
        if folded > 0 {
            conventions.append(
                Convention(
                    .changes, "BatchNorm",
                    """
                    \(folded) BatchNorm\(folded == 1 ? "" : "s") that follow a conv (stem, bottlenecks) folded into \
                    its weights and bias, as TensorFlow Lite's converter does; the others are a MUL and an ADD
                    """
                ))
        }
        conventions += FixedLayoutPreparation.layoutChanges(net, to: .nhwc, "TensorFlow Lite")
        if net.input.height == nil || net.input.width == nil {
            let side = try Verifier().verify(net).spec.inputSize
            conventions.append(
                Convention(
                    .changes, "input size",
                    """
                    the source takes any size; the TFLite model is \(side)x\(side) (the architecture's), and \
                    interpreter.resize_tensor_input changes it
                    """
                ))
            prepared.input.height = net.input.height ?? side
            prepared.input.width = net.input.width ?? side
        }
        if net.head.activation == .unknown {
            conventions.append(
                Convention(
                    .drops, "activation",
                    "the source stores none (a weights-only file): the TFLite model outputs the last dense layer's "
                        + "values"
                ))
        }
        prepared.input.layout = .nhwc
        prepared.input.name = "input"
        return (prepared, conventions)
    }

    public func encode(_ net: DenseNet, dtype: DType, provenance: Provenance) throws -> Data {
        guard let height = net.input.height, let width = net.input.width else {
            throw UnsupportedTarget(format, "the input size is not set (prepare sets it)")
        }
        var builder = TFLiteGraphBuilder(halfWeights: dtype == .f16)
        let (input, output) = builder.build(net, height: height, width: width)
        var file = TFLiteFile(
            version: Self.schemaVersion, tensors: builder.tensors, operators: builder.operators, inputs: [input],
            outputs: [output], buffers: builder.buffers)
        file.description =
            """
            densekit \(provenance.densekitVersion) from \(provenance.sourceFile) (\(provenance.sourceFormat), sha256 \
            \(provenance.sourceSHA256)) at \(provenance.convertedAt)
            """
        return try file.serialized()
    }
}

extension DenseNet {
    /// Every pooling layer with its canonical layer's name.
    fileprivate var pools: [(String, Pool2D)] {
        steps.compactMap { step in
            switch step {
            case .stem(let stem): stem.pool.map { (step.layer.name, $0) }
            case .transition(let transition, _): (step.layer.name, transition.pool)
            case .denseLayer, .head: nil
            }
        }
    }
}
