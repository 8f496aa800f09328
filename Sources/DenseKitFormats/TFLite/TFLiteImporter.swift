import DenseKitGraph
import Foundation

/// Reads a float32 (or float16-weight) `.tflite` from tf.lite's converter into the canonical graph: its operators
/// become the op graph the other graph formats use (NHWC activations and OHWI filters turned to NCHW and OIHW),
/// and the same recognition finds the DenseNet in it. A BatchNorm the converter could not fold into a conv (the one
/// after each concatenation) is its MUL and ADD by per-channel constants; it is read back as a BatchNorm that
/// computes exactly `x * scale + offset`.
public enum TFLiteImporter {
    public static func load(data: Data, path: String) throws -> DenseNet {
        let file = try TFLiteFile(data)
        var reader = Reader(file: file)
        let nodes = try reader.nodes()
        guard file.inputs.count == 1, let input = file.inputs.first, reader.isTensor(input) else {
            throw ImportError.mismatch(.part("subgraph inputs"), expected: "1 (the image)", found: "\(file.inputs)")
        }
        guard file.outputs.count == 1, let output = file.outputs.first, reader.isTensor(output) else {
            throw ImportError.mismatch(.part("subgraph outputs"), expected: "1", found: "\(file.outputs)")
        }
        let image = file.tensors[input]
        let imageQuantization = try reader.activationQuantization(input)
        guard image.type == TFLiteFile.float32 || imageQuantization != nil, image.shape.count == 4 else {
            throw ImportError.mismatch(
                .input(image.name), expected: "a 4-D FLOAT32 image, or INT8 or UINT8 with its quantisation",
                found: "type \(image.type), shape \(image.shape)")
        }
        // TFLite's activations are NHWC: a Transpose marks the input as such for the recognition. An integer input
        // is the image quantised: the user's values are quantised to its parameters.
        let marker = OpGraph.Node(
            label: "input layout", op: .transpose([0, 3, 1, 2]), inputs: ["input"], output: Reader.value(input))
        let graph = try OpGraph(
            nodes: try reader.quantizing([marker], output: input) + nodes, input: "input",
            output: Reader.value(output)
        ).normalized().foldingQuantization()
        var recognizer = DenseNetRecognizer(graph: graph)
        let recognized = try recognizer.recognise()
        let spec = InputSpec(
            name: image.name, layout: .nhwc, channels: image.shape[3], height: image.shape[1], width: image.shape[2],
            batch: nil)
        var notes = ["NHWC input transposed to NCHW", "schema version \(file.version)"]
        if !file.description.isEmpty { notes.append("description: \(file.description.prefix(300))") }
        if reader.batchNorms > 0 {
            notes.append(
                "\(reader.batchNorms) MUL and ADD pairs by per-channel constants read as the BatchNorms they were")
        }
        if reader.dequantized > 0 {
            notes.append("\(reader.dequantized) float16 weights behind DEQUANTIZE computed in float32, as TFLite does")
        }
        let source = ModelSource(
            path: path, format: .tflite, producer: "TensorFlow Lite (schema version \(file.version))",
            storedParameters: reader.storedParameters, storedBytes: reader.storedBytes,
            storedTensors: reader.storedTensors, notes: notes)
        var net = DenseNet(
            source: source, input: spec, stem: recognized.stem, blocks: recognized.blocks,
            transitions: recognized.transitions, head: recognized.head)
        net.inputTransform = try graph.inputTransform(channels: spec.channels)
        net.integerArithmetic = .tflite
        net.head.outputQuantization = graph.outputQuantization
        if let summary = net.quantizationSummary {
            net.source.notes.append(
                reader.quantizedActivations > 0
                    ? "int8, TensorFlow Lite's full-integer format: \(summary); runs with its kernels' fixed-point "
                        + "arithmetic" + (imageQuantization != nil ? "; the image is quantised to the input's" : "")
                    : "int8 weights, float activations (TensorFlow Lite's dynamic range): \(summary); those with int8 "
                        + "weights run as its hybrid kernels do, quantising each image's input on the fly")
        }
        return net
    }

    /// The operators as op-graph nodes, value `t<i>` for tensor i.
    fileprivate struct Reader {
        let file: TFLiteFile
        var floats: [Int: Tensor] = [:]
        var integers: [Int: [Int]] = [:]
        var batchNorms = 0
        var dequantized = 0
        /// Integer weights and quantised activations read.
        var quantizedWeights = 0
        var quantizedActivations = 0
        var storedParameters = 0
        var storedBytes = 0
        var storedTensors = 0
        /// The BatchNorm epsilon given to a MUL-ADD pair (any: its variance makes `variance + epsilon` 1).
        static let epsilon: Float = 1e-3

        init(file: TFLiteFile) { self.file = file }

        static func value(_ tensor: Int) -> String { "t\(tensor)" }
        func isTensor(_ index: Int) -> Bool { index >= 0 && index < file.tensors.count }

        mutating func nodes() throws -> [OpGraph.Node] {
            try readConstants()
            var readers: [Int: Int] = [:]
            for op in file.operators { for input in op.inputs where input >= 0 { readers[input, default: 0] += 1 } }
            for op in file.operators {
                for index in op.inputs + op.outputs where index != -1 && !isTensor(index) {
                    throw ImportError.mismatch(
                        .node(op.label), expected: "tensor indices below \(file.tensors.count)", found: "\(index)")
                }
                guard op.outputs.count == 1, op.outputs[0] >= 0 else {
                    throw ImportError.mismatch(.node(op.label), expected: "1 output", found: "\(op.outputs)")
                }
            }
            var out: [OpGraph.Node] = []
            var skip = Set<Int>()
            // The input and what the model's own preprocessing (MUL, ADD, SUB by constants) makes of it.
            var preprocessed: Set<String> = file.inputs.first.map { [Self.value($0)] } ?? []
            for (position, op) in file.operators.enumerated() where !skip.contains(position) {
                if let step = try preprocessingStep(op, after: preprocessed) {
                    // Of the input's int8 codes (a full-integer model's Rescaling): its output is quantised too.
                    out += try quantizing([step], output: op.outputs[0])
                    preprocessed.insert(step.output)
                    continue
                }
                if op.builtin == 6 {  // DEQUANTIZE of a float16 constant: the constant in float32.
                    guard let input = op.inputs.first else {
                        throw ImportError.mismatch(.node(op.label), expected: "1 input", found: "none")
                    }
                    if let constant = floats[input] {
                        floats[op.outputs[0]] = constant
                        dequantized += 1
                        continue
                    }
                    // Of int8 codes: their real values, which the graph's values are already.
                    guard try activationQuantization(input) != nil else {
                        throw ImportError.unsupported(
                            .node(op.label), problem: "DEQUANTIZE of an activation that is not quantised")
                    }
                    out.append(
                        OpGraph.Node(
                            label: op.label, op: .passThrough, inputs: [Self.value(input)],
                            output: Self.value(op.outputs[0])))
                    continue
                }
                if op.builtin == 114 {  // QUANTIZE of an activation: its values as codes of the output's parameters.
                    guard let input = activations(op).first, try activationQuantization(op.outputs[0]) != nil else {
                        throw ImportError.mismatch(
                            .node(op.label), expected: "an activation quantised to INT8 or UINT8 parameters",
                            found: "inputs \(op.inputs), output \(op.outputs)")
                    }
                    out += try quantizing(
                        [OpGraph.Node(label: op.label, op: .passThrough, inputs: [input], output: "")],
                        output: op.outputs[0])
                    continue
                }
                // MUL by a per-channel constant, then ADD of one (its only reader): a BatchNorm.
                if op.builtin == 18, let next = file.operators.dropFirst(position + 1).first,
                    next.builtin == 0, let input = activations(op).first,
                    let (norm, activation) = try batchNorm(op, next, readers: readers)
                {
                    skip.insert(position + 1)
                    out += try quantizing(
                        emit(
                            .batchNorm(norm), label: op.label, inputs: [input], output: next.outputs[0],
                            activation: activation, of: next),
                        output: next.outputs[0])
                    batchNorms += 1
                    continue
                }
                try checkSharedQuantization(op)
                let nodes = try convert(op)
                out += Self.movesCodes.contains(op.builtin) ? nodes : try quantizing(nodes, output: op.outputs[0])
            }
            return out
        }

        /// PAD, PADV2, MIRROR_PAD, RESHAPE and TRANSPOSE: they move codes without computing, so their output's
        /// quantisation is their input's.
        static let movesCodes: Set<Int> = [22, 34, 39, 60, 100]

        /// The quantisation of activation `index` when it holds int8 or uint8 codes (nil for a float one), checked:
        /// integer codes without parameters, or parameters TensorFlow Lite refuses, name the tensor.
        func activationQuantization(_ index: Int) throws -> Quantization? {
            guard isTensor(index) else { return nil }
            let tensor = file.tensors[index]
            guard tensor.type == TFLiteFile.int8 || tensor.type == TFLiteFile.uint8 else { return nil }
            guard let q = try quantization(tensor), q.isPerTensor else {
                throw ImportError.mismatch(
                    .tensor(tensor.name), expected: "an int8 activation with one scale and zero point",
                    found: tensor.scales.isEmpty ? "no quantisation parameters" : "\(tensor.scales.count) scales")
            }
            return q
        }

        /// A tensor's quantisation as stored (nil when it has none), checked against its shape and type.
        func quantization(_ tensor: TFLiteFile.Tensor) throws -> Quantization? {
            guard !tensor.scales.isEmpty || !tensor.zeroPoints.isEmpty else { return nil }
            let storage: Quantization.Storage
            switch tensor.type {
            case TFLiteFile.int8: storage = .int8
            case TFLiteFile.uint8: storage = .uint8
            case TFLiteFile.int32: storage = .int32
            default: return nil  // a float tensor's statistics, which nothing reads
            }
            let perChannel = tensor.scales.count > 1
            let q = Quantization(
                storage: storage, scales: tensor.scales, zeroPoints: tensor.zeroPoints.map { Int32(clamping: $0) },
                axis: perChannel ? tensor.quantizedDimension : nil)
            if perChannel, !tensor.shape.indices.contains(tensor.quantizedDimension) {
                throw ImportError.mismatch(
                    .tensor(tensor.name), expected: "a quantized_dimension of its \(tensor.shape.count) dimensions",
                    found: "\(tensor.quantizedDimension)")
            }
            let length = perChannel ? tensor.shape[tensor.quantizedDimension] : nil
            if let (_, expected, found) = q.problem(axisLength: length) {
                throw ImportError.mismatch(.tensor(tensor.name), expected: expected, found: found)
            }
            if let wide = tensor.zeroPoints.first(where: { Int64(Int32(clamping: $0)) != $0 }) {
                throw ImportError.mismatch(
                    .tensor(tensor.name), expected: "zero points of \(storage.rawValue)", found: "zero point \(wide)")
            }
            return q
        }

        /// `nodes`, an operator's (the last giving tensor `output`), then the quantisation of `output` when it holds
        /// int8 codes: a `fakeQuantize` that `OpGraph.foldingQuantization` moves onto the op.
        mutating func quantizing(_ nodes: [OpGraph.Node], output: Int) throws -> [OpGraph.Node] {
            guard let q = try activationQuantization(output), var last = nodes.last else { return nodes }
            quantizedActivations += 1
            let real = Self.value(output) + "#real"
            last.output = real
            return nodes.dropLast() + [
                last, OpGraph.Node(label: last.label, op: .fakeQuantize(q), inputs: [real], output: Self.value(output)),
            ]
        }

        /// TensorFlow Lite's CONCATENATION, pools, pads and reshapes compute on codes as they are: each integer input
        /// must have the output's scale and zero point (its converter makes them so).
        func checkSharedQuantization(_ op: TFLiteFile.Operator) throws {
            guard [1, 2, 17].contains(op.builtin) || Self.movesCodes.contains(op.builtin),
                let q = try activationQuantization(op.outputs[0])
            else { return }
            for input in op.inputs where isTensor(input) && floats[input] == nil && integers[input] == nil {
                let found = try activationQuantization(input)
                guard found == q else {
                    let describe = { (q: Quantization?) in
                        q.map { "scale \($0.scales[0]), zero point \($0.zeroPoints[0])" } ?? "float values"
                    }
                    throw ImportError.mismatch(
                        .tensor(file.tensors[input].name),
                        expected: "the quantisation of \(op.label)'s output (\(describe(q))): TensorFlow Lite does not "
                            + "requantise there",
                        found: describe(found))
                }
            }
        }

        /// Constant tensors (those with a buffer): floats decoded, integers kept; each buffer's size against
        /// its tensor's shape.
        mutating func readConstants() throws {
            for tensor in file.tensors {
                guard tensor.buffer != 0 else { continue }
                guard tensor.buffer < file.buffers.count else {
                    throw ImportError.mismatch(
                        .tensor(tensor.name), expected: "a buffer index below \(file.buffers.count)",
                        found: "\(tensor.buffer)")
                }
                let bytes = file.buffers[tensor.buffer]
                if bytes.isEmpty { continue }
                guard !tensor.sparse else {
                    throw ImportError.unsupported(.tensor(tensor.name), problem: "a sparse tensor")
                }
                guard tensor.shape.allSatisfy({ $0 >= 0 && $0 <= Int(Int32.max) }),
                    let count = Tensor.product(of: tensor.shape)
                else {
                    throw ImportError.mismatch(
                        .tensor(tensor.name), expected: "dims from 0 to 2^31-1", found: "shape \(tensor.shape)")
                }
                let size: Int
                switch tensor.type {
                case TFLiteFile.float32, TFLiteFile.int32: size = 4
                case TFLiteFile.float16: size = 2
                case TFLiteFile.int64: size = 8
                case TFLiteFile.int8, TFLiteFile.uint8: size = 1
                default:
                    throw ImportError.unsupported(
                        .tensor(tensor.name), problem: "a constant of TensorFlow Lite type \(tensor.type)")
                }
                let (expected, overflow) = count.multipliedReportingOverflow(by: size)
                guard !overflow, bytes.count == expected else {
                    throw ImportError.mismatch(
                        .tensor(tensor.name),
                        expected: overflow ? "a shape of fewer values" : "\(expected) bytes for shape \(tensor.shape)",
                        found: overflow ? "shape \(tensor.shape)" : "\(bytes.count) in buffer \(tensor.buffer)")
                }
                let q = try quantization(tensor)
                if tensor.type == TFLiteFile.int8 || tensor.type == TFLiteFile.uint8, q == nil {
                    throw ImportError.mismatch(
                        .tensor(tensor.name), expected: "8-bit codes with their quantisation",
                        found: "no quantisation parameters")
                }
                try bytes.withUnsafeBytes { raw in
                    switch tensor.type {
                    case TFLiteFile.int8, TFLiteFile.uint8,
                        TFLiteFile.int32 where q != nil:
                        // Codes (weights, a BatchNorm's factors, int32 biases): their real values, keeping the codes.
                        // Each is read as its own type's, so within its range (the validation checks it again).
                        guard let q else { return }
                        let codes: [Int32] = (0..<count).map {
                            switch tensor.type {
                            case TFLiteFile.int8: Int32(raw.load(fromByteOffset: $0, as: Int8.self))
                            case TFLiteFile.uint8: Int32(raw.load(fromByteOffset: $0, as: UInt8.self))
                            default: Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))
                            }
                        }
                        var decoded = DenseKitGraph.Tensor(
                            name: tensor.name, shape: tensor.shape,
                            values: QuantizedCodes.dequantize(codes, q, shape: tensor.shape))
                        decoded.quantized = QuantizedCodes(quantization: q, codes: codes)
                        floats[tensor.index] = decoded
                        storedParameters += count
                        storedBytes += bytes.count
                        storedTensors += 1
                        if tensor.type != TFLiteFile.int32 { quantizedWeights += 1 }
                    case TFLiteFile.float32, TFLiteFile.float16:
                        let stored: StoredFloat = tensor.type == TFLiteFile.float32 ? .f32 : .f16
                        floats[tensor.index] = DenseKitGraph.Tensor(
                            name: tensor.name, shape: tensor.shape, storedDType: stored.dtype,
                            values: stored.decode(raw, count: count))
                        storedParameters += count
                        storedBytes += bytes.count
                        storedTensors += 1
                    case TFLiteFile.int32:
                        integers[tensor.index] = (0..<count).map {
                            Int(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)))
                        }
                    default:
                        integers[tensor.index] = (0..<count).map {
                            Int(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)))
                        }
                    }
                }
            }
        }

        /// The operator's inputs that are activations (not constants), as values.
        func activations(_ op: TFLiteFile.Operator) -> [String] {
            op.inputs.filter { $0 >= 0 && floats[$0] == nil && integers[$0] == nil }.map(Self.value)
        }

        func constant(_ op: TFLiteFile.Operator, _ position: Int, _ role: String) throws -> Tensor {
            guard position < op.inputs.count, let tensor = floats[op.inputs[position]] else {
                throw ImportError.structure(.node(op.label), problem: "input \(role) is not a stored float constant")
            }
            return tensor
        }

        func integerConstant(_ op: TFLiteFile.Operator, _ position: Int, _ role: String) throws -> [Int] {
            guard position < op.inputs.count, let values = integers[op.inputs[position]] else {
                throw ImportError.structure(.node(op.label), problem: "input \(role) is not a stored integer constant")
            }
            return values
        }

        /// The node, then its fused activation (RELU) if any.
        func emit(
            _ canonical: OpGraph.Op, label: String, inputs: [String], output: Int, activation: Int32,
            of op: TFLiteFile.Operator
        ) throws -> [OpGraph.Node] {
            guard !inputs.isEmpty else {
                throw ImportError.unsupported(.node(label), problem: "an operator on constants only")
            }
            switch activation {
            case 0:
                return [OpGraph.Node(label: label, op: canonical, inputs: inputs, output: Self.value(output))]
            case 1:
                let before = Self.value(output) + "#before-relu"
                return [
                    OpGraph.Node(label: label, op: canonical, inputs: inputs, output: before),
                    OpGraph.Node(label: label, op: .relu, inputs: [before], output: Self.value(output)),
                ]
            default:
                throw ImportError.unsupported(
                    .node(op.label), problem: "fused activation \(activation) (a DenseNet has RELU or none)")
            }
        }

        /// A MUL, ADD or SUB of the input (or of a step before) by a per-channel or single constant, without a fused
        /// activation: a step of the model's own preprocessing, for `OpGraph.inputTransform`. TFLite's constants
        /// are NHWC; after the input's layout marker the step reads NCHW, so the constant becomes [1, C, 1, 1].
        func preprocessingStep(_ op: TFLiteFile.Operator, after preprocessed: Set<String>) throws -> OpGraph.Node? {
            guard [0, 18, 41].contains(op.builtin), op.options.activation == 0, op.inputs.count == 2,
                let input = activations(op).first, preprocessed.contains(input), activations(op).count == 1,
                let constant = op.inputs.lazy.compactMap({ floats[$0] }).first,
                constant.count == 1 || constant.shape.dropLast().allSatisfy({ $0 == 1 })
            else { return nil }
            if op.builtin == 41, floats[op.inputs[0]] != nil { return nil }  // constant - x
            // Of float values a SUB is the ADD of the negated constant; of int8 codes, TensorFlow Lite's own SUB.
            let onCodes = constant.quantized != nil
            let values = op.builtin == 41 && !onCodes ? constant.values.map { -$0 } : constant.values
            var reshaped = Tensor(
                name: constant.name, shape: [1, constant.count, 1, 1], storedDType: constant.storedDType,
                values: values)
            reshaped.quantized = constant.quantized
            let node: OpGraph.Op =
                switch op.builtin {
                case 18: .scale(reshaped)
                case 41 where onCodes: .subtract(reshaped)
                default: .addBias(reshaped)
                }
            return OpGraph.Node(label: op.label, op: node, inputs: [input], output: Self.value(op.outputs[0]))
        }

        /// A PADV2's value: zero (a PAD), or when only max pools read it, float16's lowest value (-65504) or less:
        /// onnx2tf pads before a max pool with its file's lowest float, which a window's maximum never takes where
        /// the map's values are above it, as they are after a DenseNet's ReLU (the max pool's own padding).
        func checkPadValue(_ op: TFLiteFile.Operator) throws {
            let value = try constant(op, 2, "constant_values")
            guard value.count == 1 else {
                throw ImportError.mismatch(.node(op.label), expected: "one constant value", found: "\(value.count)")
            }
            if value.values[0] == 0 { return }
            let readers = file.operators.filter { $0.inputs.contains(op.outputs[0]) }
            guard value.values[0] <= -65504, !readers.isEmpty,
                readers.allSatisfy({ $0.builtin == 17 })
            else {
                throw ImportError.unsupported(
                    .node(op.label),
                    problem: "pads with \(value.values[0]) (zero, or -65504 or less before a max pool, is read)")
            }
        }

        /// A bias of zeros (what the converter gives a conv that has none) as no bias.
        func bias(_ op: TFLiteFile.Operator) throws -> Tensor? {
            guard op.inputs.count > 2, op.inputs[2] >= 0 else { return nil }
            let bias = try constant(op, 2, "bias")
            return bias.values.allSatisfy { $0 == 0 } ? nil : bias
        }

        /// MUL(x, scale) then ADD(that, offset), both per-channel constants, as a BatchNorm (nil when they are not).
        func batchNorm(_ mul: TFLiteFile.Operator, _ add: TFLiteFile.Operator, readers: [Int: Int]) throws -> (
            BatchNorm, Int32
        )? {
            /// A constant of one value per channel: [C], or [1, 1, 1, C] as Keras 3's SavedModel broadcasts it.
            func perChannel(_ constant: Tensor) -> Tensor? {
                guard let channels = constant.shape.last, constant.shape.dropLast().allSatisfy({ $0 == 1 }),
                    constant.shape.count == 1 || constant.shape.count == 4
                else { return nil }
                var tensor = Tensor(
                    name: constant.name, shape: [channels], storedDType: constant.storedDType, values: constant.values)
                tensor.quantized = constant.quantized
                return tensor
            }
            guard mul.options.activation == 0, add.inputs.contains(mul.outputs[0]), readers[mul.outputs[0]] == 1,
                let scaleIndex = mul.inputs.first(where: { floats[$0] != nil }),
                let offsetIndex = add.inputs.first(where: { floats[$0] != nil }),
                let scale = floats[scaleIndex].flatMap(perChannel),
                let offset = floats[offsetIndex].flatMap(perChannel),
                offset.shape == scale.shape
            else { return nil }
            let channels = scale.count
            let variance = DenseNet.variance(giving: 1, epsilon: Self.epsilon)
            func tensor(_ name: String, _ value: Float) -> Tensor {
                Tensor(name: name, shape: [channels], values: Array(repeating: value, count: channels))
            }
            var norm = BatchNorm(
                gamma: scale, beta: offset, mean: tensor(scale.name + "#mean", 0),
                variance: tensor(scale.name + "#variance", variance), epsilon: Self.epsilon)
            // An int8 MUL's input and output: the codes it reads (a max pool's or a concatenation's) and the product's,
            // before the ADD.
            norm.inputQuantization = try mul.inputs.first.flatMap { try activationQuantization($0) }
            norm.productQuantization = try activationQuantization(mul.outputs[0])
            return (norm, add.options.activation)
        }

        func convert(_ op: TFLiteFile.Operator) throws -> [OpGraph.Node] {
            let options = op.options
            let output = op.outputs[0]
            let inputs = activations(op)
            func node(_ canonical: OpGraph.Op, activation: Int32 = 0) throws -> [OpGraph.Node] {
                try emit(canonical, label: op.label, inputs: inputs, output: output, activation: activation, of: op)
            }
            func stride() throws -> Int {
                guard options.strideW == options.strideH, (1...63).contains(options.strideW) else {
                    throw ImportError.mismatch(
                        .node(op.label), expected: "stride_w equal to stride_h, from 1 to 63",
                        found: "\(options.strideW) and \(options.strideH)")
                }
                return Int(options.strideW)
            }
            /// VALID: none; SAME at stride 1 with an odd window: half the window on each side.
            func pads(kernel: Int, stride: Int) throws -> [Int] {
                if options.padding == 1 { return [0, 0, 0, 0] }
                guard stride == 1, kernel % 2 == 1 else {
                    throw ImportError.unsupported(
                        .node(op.label), problem: "SAME padding at stride \(stride) with a \(kernel)-wide window")
                }
                return Array(repeating: kernel / 2, count: 4)
            }
            switch op.builtin {
            case 3:  // CONV_2D: OHWI filters.
                let filters = try constant(op, 1, "filter")
                guard filters.shape.count == 4, filters.shape[1] == filters.shape[2] else {
                    throw ImportError.mismatch(
                        .weight(of: .node(op.label), role: "filter", name: filters.name),
                        expected: "4 dims (OHWI) with a square window", found: "shape \(filters.shape)")
                }
                guard options.dilationW == 1, options.dilationH == 1 else {
                    throw ImportError.unsupported(.node(op.label), problem: "dilation")
                }
                let bias = try bias(op)
                if let bias, bias.count != filters.shape[0] {
                    throw ImportError.mismatch(
                        .weight(of: .node(op.label), role: "bias", name: bias.name),
                        expected: "\(filters.shape[0]) values (one per filter)", found: "\(bias.count)")
                }
                let strideValue = try stride()
                let conv = Conv2D(
                    weight: filters.permuted(.ohwi, to: .oihw), bias: bias, stride: strideValue,
                    pads: try pads(kernel: filters.shape[1], stride: strideValue))
                return try node(.conv(conv), activation: options.activation)
            case 34, 100, 60:  // PAD, MIRROR_PAD (timm's blur pool), PADV2: [[N], [H], [W], [C]] before and after.
                let paddings = try integerConstant(op, 1, "paddings")
                guard paddings.count == 8, paddings[0] == 0, paddings[1] == 0, paddings[6] == 0, paddings[7] == 0,
                    paddings.allSatisfy({ (0..<64).contains($0) })
                else {
                    throw ImportError.mismatch(
                        .node(op.label), expected: "paddings of H and W only (NHWC), each 0 to 63",
                        found: "\(paddings)")
                }
                let sides = [paddings[2], paddings[4], paddings[3], paddings[5]]
                if op.builtin == 60 { try checkPadValue(op) }
                guard op.builtin == 100 else { return try node(.pad(sides)) }
                guard options.mirrorMode == 0 else {
                    throw ImportError.unsupported(
                        .node(op.label), problem: "SYMMETRIC mirror padding (a blur pool reflects)")
                }
                return try node(.reflectPad(sides))
            case 4:  // DEPTHWISE_CONV_2D: filters [1, H, W, C], one per channel (a blur pool's filter).
                let filters = try constant(op, 1, "filter")
                guard filters.shape.count == 4, filters.shape[0] == 1, filters.shape[1] == filters.shape[2],
                    options.depthMultiplier == 1, options.dilationW == 1, options.dilationH == 1
                else {
                    throw ImportError.mismatch(
                        .weight(of: .node(op.label), role: "filter", name: filters.name),
                        expected: "[1, k, k, C] with depth multiplier 1 and no dilation",
                        found: "shape \(filters.shape), depth multiplier \(options.depthMultiplier)")
                }
                let (side, channels) = (filters.shape[1], filters.shape[3])
                let oihw = filters.permuted(.ohwi, to: .oihw)  // [1, C, k, k]: the same values as [C, 1, k, k]
                let weight = Tensor(
                    name: filters.name, shape: [channels, 1, side, side], storedDType: filters.storedDType,
                    values: oihw.values)
                let strideValue = try stride()
                let conv = Conv2D(
                    weight: weight, bias: try bias(op), stride: strideValue,
                    pads: try pads(kernel: side, stride: strideValue))
                return try node(.depthwiseConv(conv), activation: options.activation)
            case 1, 17:  // AVERAGE_POOL_2D, MAX_POOL_2D
                guard options.filterW == options.filterH, (1...63).contains(options.filterW) else {
                    throw ImportError.mismatch(
                        .node(op.label), expected: "a square window of side 1 to 63",
                        found: "\(options.filterW)x\(options.filterH)")
                }
                let strideValue = try stride()
                let kernel = Int(options.filterW)
                let pool = Pool2D(
                    kind: op.builtin == 17 ? .max : .average, kernel: kernel, stride: strideValue,
                    pads: try pads(kernel: kernel, stride: strideValue))
                return try node(.pool(pool), activation: options.activation)
            case 2:  // CONCATENATION of NHWC maps: the channel axis.
                guard options.axis == 3 || options.axis == -1 else {
                    throw ImportError.mismatch(.node(op.label), expected: "axis 3 (channels)", found: "\(options.axis)")
                }
                return try node(.concat, activation: options.activation)
            case 40, 82:  // MEAN or REDUCE_MAX over H and W: the global pool.
                let axes = try integerConstant(op, 1, "axes")
                guard Set(axes) == [1, 2] else {
                    throw ImportError.mismatch(.node(op.label), expected: "axes [1, 2] (H and W)", found: "\(axes)")
                }
                return try node(op.builtin == 40 ? .globalAveragePool : .globalMaxPool)
            case 9:  // FULLY_CONNECTED: weights (out, in).
                let weights = try constant(op, 1, "weights")
                guard weights.shape.count == 2, options.weightsFormat == 0 else {
                    throw ImportError.mismatch(
                        .weight(of: .node(op.label), role: "weights", name: weights.name),
                        expected: "2 dims (out, in), default format", found: "shape \(weights.shape)")
                }
                return try node(.linear(Linear(weight: weights, bias: try bias(op))), activation: options.activation)
            case 18: return try node(.scale(try constant(op, 1, "scale")), activation: options.activation)
            case 0: return try node(.addBias(try constant(op, 1, "offset")), activation: options.activation)
            case 19: return try node(.relu)
            case 25:
                guard options.beta == 1 else {
                    throw ImportError.mismatch(.node(op.label), expected: "beta 1", found: "\(options.beta)")
                }
                return try node(.softmax)
            case 14: return try node(.sigmoid)
            case 28: return try node(.tanh)
            case 22: return try node(.passThrough)
            case 39:  // TRANSPOSE that moves only unit axes (onnx2tf's [1, 1, 1, C] to [1, C, 1, 1]): a reshape.
                let perm = try integerConstant(op, 1, "perm")
                let shape = op.inputs.first.flatMap { isTensor($0) ? file.tensors[$0].shape : nil } ?? []
                guard perm.count == shape.count, Set(perm) == Set(shape.indices),
                    perm.filter({ shape[$0] != 1 }) == shape.indices.filter({ shape[$0] != 1 })
                else {
                    throw ImportError.unsupported(
                        .node(op.label),
                        problem:
                            "a transpose by \(perm) of shape \(shape) that reorders values (only unit axes may move)")
                }
                return try node(.passThrough)
            default:
                throw ImportError.mismatch(
                    .node(op.label),
                    expected:
                        """
                        an operator of a DenseNet (CONV_2D, MUL, ADD, RELU, CONCATENATION, AVERAGE_POOL_2D, \
                        MAX_POOL_2D, PAD, PADV2, MEAN, REDUCE_MAX, FULLY_CONNECTED, SOFTMAX, LOGISTIC, RESHAPE, \
                        TRANSPOSE of unit axes, DEQUANTIZE, MIRROR_PAD and DEPTHWISE_CONV_2D of a blur pool)
                        """,
                    found: op.builtin < 0 ? "a custom operator" : "builtin operator \(op.builtin)")
            }
        }
    }
}
