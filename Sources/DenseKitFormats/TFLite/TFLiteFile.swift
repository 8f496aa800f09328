import DenseKitGraph
import Foundation
import TFLiteSchema

/// A `.tflite` file as Swift values: the one file that calls the TFLiteSchema shim. FlatBuffers' own verifier
/// checks the whole buffer before anything is read (every offset and vector inside it); what the schema cannot
/// say (a tensor index past the tensors, a buffer whose size contradicts its tensor's shape) is checked by the
/// importer. The writer describes a model in the same values and `serialized()` builds it with FlatBuffers'
/// builder.
package struct TFLiteFile {
    package struct Tensor {
        package var index: Int
        package var name: String
        package var shape: [Int]
        /// The shape with -1 where it may change (the batch); empty when the file has none.
        package var shapeSignature: [Int] = []
        package var type: Int
        package var buffer: Int
        package var sparse: Bool = false
        /// The affine quantisation's parameters as stored (empty when the tensor has none).
        package var scales: [Float] = []
        package var zeroPoints: [Int64] = []
        package var quantizedDimension = 0
    }

    /// An operator's options (the shim's fields for every builtin option a DenseNet's operators use).
    package typealias Options = DKTFLiteOperator

    package struct Operator {
        package var index: Int
        /// tflite::BuiltinOperator; -1 for an unknown or custom operator code.
        package var builtin: Int
        package var inputs: [Int]
        package var outputs: [Int]
        package var options: Options
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
    /// The model's description (DenseKit writes its provenance there).
    package var description = ""

    /// TensorFlow Lite's type codes DenseKit reads (tflite::TensorType).
    package static let float32 = 0, float16 = 1, int32 = 2, int64 = 4, int8 = 9, uint8 = 3

    package static let operatorNames: [Int: String] = [
        0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D", 6: "DEQUANTIZE",
        9: "FULLY_CONNECTED", 14: "LOGISTIC", 17: "MAX_POOL_2D", 18: "MUL", 19: "RELU", 22: "RESHAPE", 25: "SOFTMAX",
        28: "TANH", 34: "PAD", 39: "TRANSPOSE", 40: "MEAN", 41: "SUB", 60: "PADV2", 82: "REDUCE_MAX", 100: "MIRROR_PAD",
        114: "QUANTIZE",
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

    package init(
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

    private static func text(_ start: UnsafePointer<CChar>?, _ count: UInt32) -> String {
        start.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: Int(count)), as: UTF8.self) } ?? ""
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
            let name = text(tensor.name, tensor.nameLength)
            tensors.append(
                Tensor(
                    index: Int(index), name: name, shape: ints(tensor.shape),
                    shapeSignature: ints(tensor.shapeSignature), type: Int(tensor.type), buffer: Int(tensor.buffer),
                    sparse: tensor.sparse != 0,
                    scales: tensor.scale.map { Array(UnsafeBufferPointer(start: $0, count: Int(tensor.scaleCount))) }
                        ?? [],
                    zeroPoints: tensor.zeroPoint.map {
                        Array(UnsafeBufferPointer(start: $0, count: Int(tensor.zeroPointCount)))
                    } ?? [],
                    quantizedDimension: Int(tensor.quantizedDimension)))
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
        var file = TFLiteFile(
            version: Int(model.version), tensors: tensors, operators: operators, inputs: ints(graph.inputs),
            outputs: ints(graph.outputs), buffers: buffers)
        file.description = text(model.description, model.descriptionLength)
        return file
    }
}

extension TFLiteFile {
    /// The file's bytes, built by FlatBuffers' builder: one subgraph, an operator code per distinct builtin
    /// operator (in order of first use), each operator's options as its builtin's table. Tensors' quantisation
    /// and sparsity are not written.
    package func serialized() throws -> Data {
        // Every variable-length field lives in one of three arrays, so the C structs can point into them while
        // the builder runs.
        var integers: [Int32] = []
        var text: [UInt8] = []
        var bytes: [UInt8] = []
        func span(_ values: [Int]) -> Range<Int> {
            let start = integers.count
            integers += values.map { Int32(clamping: $0) }
            return start..<integers.count
        }
        var builtins: [Int] = []
        var codeIndex: [Int: Int] = [:]
        var tensorFields: [(shape: Range<Int>, signature: Range<Int>, name: Range<Int>)] = []
        for tensor in tensors {
            let start = text.count
            text += Array(tensor.name.utf8)
            tensorFields.append((span(tensor.shape), span(tensor.shapeSignature), start..<text.count))
        }
        var operatorFields: [(inputs: Range<Int>, outputs: Range<Int>)] = []
        for op in operators {
            if codeIndex[op.builtin] == nil {
                codeIndex[op.builtin] = builtins.count
                builtins.append(op.builtin)
            }
            operatorFields.append((span(op.inputs), span(op.outputs)))
        }
        let (inputSpan, outputSpan) = (span(inputs), span(outputs))
        var bufferSpans: [Range<Int>] = []
        for buffer in buffers {
            let start = bytes.count
            bytes += buffer
            bufferSpans.append(start..<bytes.count)
        }
        let descriptionStart = text.count
        text += Array(description.utf8) + [0]  // NUL-terminated, for C
        var size = 0
        let built: UnsafeMutablePointer<UInt8>? = integers.withUnsafeBufferPointer { ints in
            text.withUnsafeBufferPointer { chars in
                bytes.withUnsafeBufferPointer { raw in
                    func ints32(_ range: Range<Int>) -> DKTFLiteInts {
                        DKTFLiteInts(values: ints.baseAddress.map { $0 + range.lowerBound }, count: UInt32(range.count))
                    }
                    func cString(_ start: Int) -> UnsafePointer<CChar>? {
                        chars.baseAddress.map { UnsafeRawPointer($0 + start).assumingMemoryBound(to: CChar.self) }
                    }
                    let codes = builtins.map { DKTFLiteOperatorCode(builtin: Int32($0), version: 1, custom: 0) }
                    let specTensors = zip(tensors, tensorFields).map { tensor, fields in
                        var out = DKTFLiteTensor()
                        out.shape = ints32(fields.shape)
                        out.shapeSignature = ints32(fields.signature)
                        out.type = Int32(tensor.type)
                        out.buffer = UInt32(tensor.buffer)
                        out.name = cString(fields.name.lowerBound)
                        out.nameLength = UInt32(fields.name.count)
                        return out
                    }
                    let specOperators = zip(operators, operatorFields).map { op, fields in
                        var out = op.options
                        out.opcodeIndex = UInt32(codeIndex[op.builtin] ?? 0)
                        out.inputs = ints32(fields.inputs)
                        out.outputs = ints32(fields.outputs)
                        return out
                    }
                    let specBuffers = bufferSpans.map { range in
                        DKTFLiteBuffer(
                            data: raw.baseAddress.map { $0 + range.lowerBound }, size: range.count, offset: 0,
                            externalSize: 0, found: 1)
                    }
                    return codes.withUnsafeBufferPointer { codes in
                        specTensors.withUnsafeBufferPointer { specTensors in
                            specOperators.withUnsafeBufferPointer { specOperators in
                                specBuffers.withUnsafeBufferPointer { specBuffers in
                                    var spec = DKTFLiteModelSpec(
                                        version: UInt32(version), operatorCodes: codes.baseAddress,
                                        operatorCodeCount: UInt32(codes.count), tensors: specTensors.baseAddress,
                                        tensorCount: UInt32(specTensors.count), operators: specOperators.baseAddress,
                                        operatorCount: UInt32(specOperators.count), inputs: ints32(inputSpan),
                                        outputs: ints32(outputSpan), buffers: specBuffers.baseAddress,
                                        bufferCount: UInt32(specBuffers.count), description: cString(descriptionStart))
                                    return dk_tflite_build(&spec, &size)
                                }
                            }
                        }
                    }
                }
            }
        }
        guard let built else {
            throw WriteError.doesNotFit(
                format: "tflite", problem: "FlatBuffers cannot hold the model (a FlatBuffer is at most 2 GB)")
        }
        return Data(bytesNoCopy: built, count: size, deallocator: .free)
    }
}
