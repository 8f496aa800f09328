import DenseKitGraph
import Foundation
import TFLiteSchema

/// A `.tflite` file as Swift values: the one file that calls the TFLiteSchema shim. FlatBuffers' own verifier
/// checks the whole buffer before anything is read (every offset and vector inside it); what the schema cannot
/// say (a tensor index past the tensors, a buffer whose size contradicts its tensor's shape) is checked here.
package struct TFLiteFile {
    package struct Tensor {
        package var index: Int
        package var name: String
        package var shape: [Int]
        package var type: Int
        package var buffer: Int
        package var sparse: Bool
    }

    package struct Operator {
        package var index: Int
        /// tflite::BuiltinOperator; -1 for an unknown or custom operator code.
        package var builtin: Int
        package var inputs: [Int]
        package var outputs: [Int]
        package var options: DKTFLiteOperator
        /// "CONV_2D 3 ('name of its first output')", for messages.
        package var label: String
    }

    package var version: Int
    package var tensors: [Tensor]
    package var operators: [Operator]
    package var inputs: [Int]
    package var outputs: [Int]
    /// Each buffer's bytes (copied out of the flatbuffer).
    package var buffers: [Data]

    /// TensorFlow Lite's type codes DenseKit reads (tflite::TensorType).
    package static let float32 = 0, float16 = 1, int32 = 2, int64 = 4, int8 = 9, uint8 = 3

    package static let operatorNames: [Int: String] = [
        0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 6: "DEQUANTIZE",
        9: "FULLY_CONNECTED", 14: "LOGISTIC", 17: "MAX_POOL_2D", 18: "MUL", 19: "RELU", 22: "RESHAPE", 25: "SOFTMAX",
        28: "TANH", 34: "PAD", 39: "TRANSPOSE", 40: "MEAN", 114: "QUANTIZE",
    ]

    package init(_ data: Data) throws {
        let parsed: TFLiteFile? = try data.withUnsafeBytes { raw -> TFLiteFile? in
            guard let base = raw.bindMemory(to: UInt8.self).baseAddress, dk_tflite_verify(base, raw.count) == 1
            else { return nil }
            return try Self.read(base)
        }
        guard let parsed else {
            throw ImportError.malformed(
                .part("FlatBuffer"),
                problem: "the FlatBuffers verifier refuses it (an offset or a vector outside the file, or truncated)")
        }
        self = parsed
    }

    private init(
        version: Int, tensors: [Tensor], operators: [Operator], inputs: [Int], outputs: [Int], buffers: [Data]
    ) {
        self.version = version
        self.tensors = tensors
        self.operators = operators
        self.inputs = inputs
        self.outputs = outputs
        self.buffers = buffers
    }

    private static func ints(_ values: DKTFLiteInts) -> [Int] {
        guard let start = values.values else { return [] }
        return UnsafeBufferPointer(start: start, count: Int(values.count)).map { Int(Int32(littleEndian: $0)) }
    }

    private static func read(_ base: UnsafePointer<UInt8>) throws -> TFLiteFile {
        var model = DKTFLiteModel()
        dk_tflite_model(base, &model)
        guard model.subgraphs == 1 else {
            throw ImportError.mismatch(.part("model"), expected: "1 subgraph", found: "\(model.subgraphs)")
        }
        var graph = DKTFLiteSubgraph()
        dk_tflite_subgraph(base, 0, &graph)
        var buffers: [Data] = []
        for index in 0..<model.buffers {
            var buffer = DKTFLiteBuffer()
            dk_tflite_buffer(base, index, &buffer)
            guard buffer.offset <= 1 else {
                throw ImportError.unsupported(
                    .part("buffer \(index)"), problem: "data outside the FlatBuffer (a model over 2 GB)")
            }
            buffers.append(buffer.data.map { Data(bytes: $0, count: buffer.size) } ?? Data())
        }
        var tensors: [Tensor] = []
        for index in 0..<graph.tensors {
            var tensor = DKTFLiteTensor()
            dk_tflite_tensor(base, 0, index, &tensor)
            let name =
                tensor.name.map {
                    String(decoding: UnsafeRawBufferPointer(start: $0, count: Int(tensor.nameLength)), as: UTF8.self)
                } ?? ""
            tensors.append(
                Tensor(
                    index: Int(index), name: name, shape: ints(tensor.shape), type: Int(tensor.type),
                    buffer: Int(tensor.buffer), sparse: tensor.sparse != 0))
        }
        var operators: [Operator] = []
        for index in 0..<graph.operators {
            var op = DKTFLiteOperator()
            dk_tflite_operator(base, 0, index, &op)
            var code = DKTFLiteOperatorCode()
            dk_tflite_operator_code(base, op.opcodeIndex, &code)
            let builtin = code.custom != 0 ? -1 : Int(code.builtin)
            let outputs = ints(op.outputs)
            let name = operatorNames[builtin] ?? (builtin < 0 ? "a custom operator" : "operator \(builtin)")
            let first = outputs.first.flatMap { $0 >= 0 && $0 < tensors.count ? tensors[$0].name : nil } ?? ""
            operators.append(
                Operator(
                    index: Int(index), builtin: code.builtin < 0 ? -1 : builtin, inputs: ints(op.inputs),
                    outputs: outputs, options: op, label: "\(name) \(index) ('\(first)')"))
        }
        return TFLiteFile(
            version: Int(model.version), tensors: tensors, operators: operators, inputs: ints(graph.inputs),
            outputs: ints(graph.outputs), buffers: buffers)
    }
}
