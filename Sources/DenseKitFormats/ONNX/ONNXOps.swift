import DenseKitGraph

/// One function per ONNX operator: each reads the spec's attributes (with the spec's defaults) and
/// returns the canonical op. An operator DenseKit does not know is an error naming it and the opset.
package struct ONNXOps {
    package var decoder: ONNXTensorDecoder
    /// Float constants: initializers, Constant nodes and Casts of either.
    package var floats: [String: Tensor]
    /// Every constant as its undecoded TensorProto (integers are decoded on demand).
    package var refs: [String: ONNXTensorRef]
    package let opset: Int
    /// The quantisation of every activation that holds integer codes (what a QuantizeLinear or a QLinear
    /// operator gave), by value name.
    var quantizedValues: [String: Quantization] = [:]

    /// ONNX's and onnxruntime's integer quantisation operators (QuantizeLinear, DequantizeLinear, QLinearConv,
    /// com.microsoft's QLinearConcat, QGemm, ...).
    static func isQuantization(_ opType: String) -> Bool {
        opType.hasPrefix("QLinear")
            || ["QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "ConvInteger", "MatMulInteger", "QGemm"]
                .contains(opType)
    }

    /// The canonical ops of one node: none for a constant, two for onnxruntime's `FusedConv` (the conv,
    /// then its activation), one otherwise.
    package mutating func convert(_ node: ONNXNode) throws -> [OpGraph.Node] {
        guard let out = node.outputs.first, !out.isEmpty else {
            throw ImportError.malformed(.node(node.label), problem: "has no output")
        }
        if node.domain == "com.microsoft" && node.opType == "FusedConv" { return try fusedConv(node, output: out) }
        if Self.isQuantization(node.opType) { return try quantized(node, output: out) }
        guard node.domain.isEmpty || node.domain == "ai.onnx" else {
            throw ImportError.unsupported(
                .node(node.label),
                problem: "operator '\(node.opType)' of domain '\(node.domain)' is not supported"
                    + (node.domain == "com.microsoft" ? " (of onnxruntime's contrib operators, only FusedConv)" : ""))
        }
        let op: OpGraph.Op
        switch node.opType {
        case "Conv": op = try convolution(node)
        case "BatchNormalization": op = .batchNorm(try batchNormalization(node))
        case "Relu": op = .relu
        case "MaxPool": op = .pool(try pool(node, .max))
        case "AveragePool": op = .pool(try pool(node, .average))
        case "GlobalAveragePool": op = .globalAveragePool
        case "GlobalMaxPool": op = .globalMaxPool
        case "ReduceMean": op = try globalReduction(node, .globalAveragePool)
        case "ReduceMax": op = try globalReduction(node, .globalMaxPool)
        case "Sigmoid": op = .sigmoid
        case "Tanh": op = .tanh
        case "Concat": op = try concat(node)
        case "Gemm": op = .linear(try gemm(node))
        case "MatMul": op = .linear(try matMul(node))
        case "Add": op = .addBias(try constantOperand(node))
        case "Mul": op = .scale(try constantOperand(node))
        case "Softmax": op = try softmax(node)
        case "Identity", "Dropout", "Flatten", "Reshape", "Squeeze": op = .passThrough
        case "Cast":
            guard let castOp = try cast(node) else { return [] }
            op = castOp
        case "Pad":
            if let codes = node.inputs.first.flatMap({ quantizedValues[$0] }) {
                // Codes pad with their zero point (checked), not with the float 0 that `pad` checks for.
                try checkPadsWithZeroPoint(node, codes)
                op = try pad(ONNXNode(copying: node, inputs: Array(node.inputs.prefix(2))))
            } else {
                op = try pad(node)
            }
        case "Transpose": op = .transpose(ints(node, "perm").map(Int.init))
        case "Constant":
            try constant(node)
            return []
        default:
            throw ImportError.mismatch(
                .node(node.label),
                expected:
                    """
                    an operator of a DenseNet (Conv, BatchNormalization, Relu, MaxPool, AveragePool, Concat; in \
                    the head GlobalAveragePool, GlobalMaxPool, Gemm, MatMul, Sigmoid, Softmax, Tanh)
                    """,
                found: "\(node.opType) (opset \(opset))")
        }
        // A max pool (onnxruntime pools codes directly), a Pad (of codes with their zero point), a Transpose and the
        // pass-throughs give codes of the quantisation they read; every other operator reads floats.
        let passesCodes = ["MaxPool", "Pad", "Transpose", "Identity", "Dropout", "Flatten", "Reshape", "Squeeze"]
            .contains(node.opType)
        if passesCodes, let input = node.inputs.first, let codes = quantizedValues[input] {
            quantizedValues[out] = codes
        } else if !passesCodes, let coded = node.inputs.first(where: { quantizedValues[$0] != nil }) {
            throw ImportError.mismatch(
                .node(node.label), expected: "float input (a DequantizeLinear before it)",
                found: "the integer codes '\(coded)'")
        }
        return [OpGraph.Node(label: node.label, op: op, inputs: try activations(node), output: out)]
    }

    /// The inputs that are not constants (at least one).
    func activations(_ node: ONNXNode) throws -> [String] {
        let activations = node.inputs.filter { !$0.isEmpty && refs[$0] == nil && floats[$0] == nil }
        guard !activations.isEmpty else {
            throw ImportError.unsupported(.node(node.label), problem: "operator on constants only is not supported")
        }
        return activations
    }

    /// onnxruntime's `com.microsoft.FusedConv` (what its extended optimisation level saves): a Conv with
    /// the activation that followed it as an attribute. Read as the Conv, then that activation (Relu:
    /// the only one a DenseNet has); an added fourth input (a fused sum) is not a DenseNet's.
    mutating func fusedConv(_ node: ONNXNode, output: String) throws -> [OpGraph.Node] {
        guard node.inputs.count < 4 || node.inputs[3].isEmpty else {
            throw ImportError.unsupported(.node(node.label), problem: "FusedConv with a sum input Z")
        }
        guard case .string(let activation)? = node.attributes["activation"], activation == "Relu" else {
            let found: String
            if case .string(let other)? = node.attributes["activation"] { found = other } else { found = "none" }
            throw ImportError.mismatch(.node(node.label), expected: "activation Relu", found: "activation \(found)")
        }
        let convolved = output + "#FusedConv.conv"
        return [
            OpGraph.Node(
                label: node.label, op: .conv(try conv(node)), inputs: try activations(node), output: convolved),
            OpGraph.Node(label: node.label, op: .relu, inputs: [convolved], output: output),
        ]
    }

    // MARK: operators

    /// A Conv; one of a group per channel with 1-channel filters (a blur pool's) as a depthwise conv. Any
    /// other group is refused by `conv`.
    mutating func convolution(_ node: ONNXNode) throws -> OpGraph.Op {
        let group = int(node, "group", 1)
        if group != 1, node.inputs.count > 1, let filters = floats[node.inputs[1]], filters.shape.count == 4,
            filters.shape[1] == 1, Int64(filters.shape[0]) == group
        {
            return .depthwiseConv(try conv(node, group: group))
        }
        return .conv(try conv(node))
    }

    mutating func conv(_ node: ONNXNode, group: Int64 = 1) throws -> Conv2D {
        let filters = try weight(node, 1, "W")
        guard filters.shape.count == 4 else {
            throw ImportError.mismatch(
                .weight(of: .node(node.label), role: "weight", name: filters.name), expected: "4 dims (OIHW)",
                found: "\(filters.shape.count)")
        }
        guard int(node, "group", 1) == group else {
            throw ImportError.mismatch(
                .node(node.label), expected: "group 1", found: "group \(int(node, "group", 1))")
        }
        guard ints(node, "dilations").allSatisfy({ $0 == 1 }) else {
            throw ImportError.mismatch(
                .node(node.label), expected: "dilations [1, 1]", found: "\(ints(node, "dilations"))")
        }
        let kernel = ints(node, "kernel_shape").map(Int.init)
        guard kernel.isEmpty || kernel == [filters.shape[2], filters.shape[3]] else {
            throw ImportError.mismatch(
                .node(node.label),
                expected:
                    "kernel_shape [\(filters.shape[2]), \(filters.shape[3])] (the weight's shape \(filters.shape))",
                found: "kernel_shape \(kernel)")
        }
        guard filters.shape[2] == filters.shape[3] else {
            throw ImportError.unsupported(
                .node(node.label), problem: "non-square kernel \(filters.shape[2])x\(filters.shape[3])")
        }
        var bias: Tensor? = nil
        if node.inputs.count > 2, !node.inputs[2].isEmpty {
            bias = try weight(node, 2, "B")
            guard bias?.count == filters.shape[0] else {
                throw ImportError.mismatch(
                    .weight(of: .node(node.label), role: "bias", name: bias?.name ?? ""),
                    expected: "\(filters.shape[0]) values (one per output channel)",
                    found: "\(bias?.count ?? 0)")
            }
        }
        let stride = try uniform(node, "strides", default: 1)
        let pads = try padsAttribute(node)
        return Conv2D(weight: filters, bias: bias, stride: stride, pads: pads)
    }

    mutating func batchNormalization(_ node: ONNXNode) throws -> BatchNorm {
        guard int(node, "training_mode", 0) == 0 else {
            throw ImportError.unsupported(.node(node.label), problem: "training-mode BatchNormalization")
        }
        // Opsets 7 and 8 (and 9) may say `spatial`: 0 normalises every position separately.
        guard int(node, "spatial", 1) == 1 else {
            throw ImportError.unsupported(.node(node.label), problem: "spatial 0 (a BatchNormalization per position)")
        }
        let parts = try (1...4).map { try weight(node, $0, ["scale", "B", "input_mean", "input_var"][$0 - 1]) }
        let channels = parts[0].count
        guard parts.allSatisfy({ $0.count == channels }) else {
            throw ImportError.structure(
                .node(node.label), problem: "scale, bias, mean and variance sizes differ (\(parts.map(\.count)))")
        }
        return BatchNorm(
            gamma: parts[0], beta: parts[1], mean: parts[2], variance: parts[3], epsilon: float(node, "epsilon", 1e-5))
    }

    func pool(_ node: ONNXNode, _ kind: Pool2D.Kind) throws -> Pool2D {
        let kernel = ints(node, "kernel_shape")
        guard kernel.count == 2, kernel[0] == kernel[1], kernel[0] > 0, kernel[0] < 64 else {
            throw ImportError.unsupported(
                .node(node.label), problem: "kernel_shape \(kernel) (square 2-D kernels only)")
        }
        guard int(node, "ceil_mode", 0) == 0 else {
            throw ImportError.unsupported(.node(node.label), problem: "ceil_mode 1")
        }
        guard ints(node, "dilations").allSatisfy({ $0 == 1 }) else {
            throw ImportError.unsupported(.node(node.label), problem: "dilated pooling")
        }
        let stride = try uniform(node, "strides", default: 1)
        return Pool2D(
            kind: kind, kernel: Int(kernel[0]), stride: stride,
            pads: try padsAttribute(node),
            countIncludePad: int(node, "count_include_pad", 0) != 0)
    }

    /// ReduceMean or ReduceMax over H and W: a global pool (axes from the attribute, or the input from opset 18).
    mutating func globalReduction(_ node: ONNXNode, _ pool: OpGraph.Op) throws -> OpGraph.Op {
        var axes = ints(node, "axes")
        if node.inputs.count > 1, let ref = refs[node.inputs[1]] { axes = try decoder.integers(ref) }
        guard Set(axes.map { $0 < 0 ? $0 + 4 : $0 }) == [2, 3] else {
            throw ImportError.mismatch(
                .node(node.label), expected: "axes [2, 3] (the spatial axes of NCHW)", found: "\(axes)")
        }
        return pool
    }

    func concat(_ node: ONNXNode) throws -> OpGraph.Op {
        let axis = int(node, "axis", 1)
        guard axis == 1 || axis == -3 else {
            throw ImportError.unsupported(
                .node(node.label), problem: "Concat on axis \(axis) (DenseNet concatenates channels, axis 1 of NCHW)")
        }
        return .concat
    }

    mutating func gemm(_ node: ONNXNode) throws -> Linear {
        guard int(node, "transA", 0) == 0 else {
            throw ImportError.unsupported(.node(node.label), problem: "Gemm with transA")
        }
        var matrix = try weight(node, 1, "B")
        guard matrix.shape.count == 2 else {
            throw ImportError.mismatch(
                .weight(of: .node(node.label), role: "weight", name: matrix.name), expected: "2 dims",
                found: "\(matrix.shape.count)"
            )
        }
        if int(node, "transB", 0) == 0 { matrix = matrix.transposed() }
        let alpha = float(node, "alpha", 1)
        let beta = float(node, "beta", 1)
        if alpha != 1 { matrix.values = matrix.values.map { $0 * alpha } }
        var linearBias: Tensor? = nil
        if node.inputs.count > 2, !node.inputs[2].isEmpty {
            var bias = try weight(node, 2, "C")
            guard bias.count == matrix.shape[0] else {
                throw ImportError.mismatch(
                    .weight(of: .node(node.label), role: "bias", name: bias.name),
                    expected: "\(matrix.shape[0]) values (one per output)",
                    found: "\(bias.count)")
            }
            if beta != 1 { bias.values = bias.values.map { $0 * beta } }
            bias.shape = [bias.count]
            linearBias = bias
        }
        return Linear(weight: matrix, bias: linearBias)
    }

    mutating func matMul(_ node: ONNXNode) throws -> Linear {
        let matrix = try weight(node, 1, "B")
        guard matrix.shape.count == 2 else {
            throw ImportError.mismatch(
                .weight(of: .node(node.label), role: "weight", name: matrix.name), expected: "2 dims",
                found: "\(matrix.shape.count)"
            )
        }
        return Linear(weight: matrix.transposed(), bias: nil)
    }

    /// The constant operand of a binary Add or Mul (either input).
    mutating func constantOperand(_ node: ONNXNode) throws -> Tensor {
        guard node.inputs.count == 2 else { throw ImportError.malformed(.node(node.label), problem: "needs 2 inputs") }
        let constant = floats[node.inputs[1]] != nil ? 1 : 0
        return try weight(node, constant, "B")
    }

    func softmax(_ node: ONNXNode) throws -> OpGraph.Op {
        let axis = int(node, "axis", opset >= 13 ? -1 : 1)
        guard axis == -1 || axis == 1 else {
            throw ImportError.unsupported(.node(node.label), problem: "Softmax on axis \(axis)")
        }
        return .softmax
    }

    /// A Cast of activations, or nil when it casts a stored weight (folded into a constant).
    mutating func cast(_ node: ONNXNode) throws -> OpGraph.Op? {
        guard
            let to = attribute(node, "to").flatMap({ if case .int(let type) = $0 { return type } else { return nil } })
        else {
            throw ImportError.malformed(.node(node.label), problem: "Cast without 'to'")
        }
        if var constant = floats[node.inputs.first ?? ""] {
            // A Cast of a stored weight (float16 exports): fold it, keeping the stored dtype.
            guard to == 1 else {
                throw ImportError.unsupported(
                    .node(node.label), problem: "Cast of a weight to \(ONNXTensorDecoder.typeName(Int32(to)))")
            }
            constant.name = node.outputs[0]
            floats[node.outputs[0]] = constant
            return nil
        }
        guard to == 1 else {
            throw ImportError.unsupported(
                .node(node.label), problem: "Cast of activations to \(ONNXTensorDecoder.typeName(Int32(to)))")
        }
        return .passThrough
    }

    mutating func pad(_ node: ONNXNode) throws -> OpGraph.Op {
        var reflect = false
        if case .string(let mode)? = attribute(node, "mode"), mode != "constant" {
            guard mode == "reflect" else {
                throw ImportError.unsupported(
                    .node(node.label),
                    problem: "Pad mode '\(mode)' (only constant zero padding, or a blur pool's reflect)")
            }
            reflect = true
        }
        var pads = ints(node, "pads")
        if pads.isEmpty, node.inputs.count > 1, let ref = refs[node.inputs[1]] { pads = try decoder.integers(ref) }
        if node.inputs.count > 2, !node.inputs[2].isEmpty, let padding = floats[node.inputs[2]],
            padding.values.contains(where: { $0 != 0 })
        {
            throw ImportError.unsupported(.node(node.label), problem: "Pad with a non-zero value")
        }
        guard pads.count == 8, pads[0] == 0, pads[1] == 0, pads[4] == 0, pads[5] == 0,
            pads.allSatisfy({ $0 >= 0 && $0 < 64 })
        else {
            throw ImportError.mismatch(
                .node(node.label), expected: "8 pads padding only H and W of NCHW, each 0 to 63", found: "\(pads)")
        }
        let sides = [pads[2], pads[3], pads[6], pads[7]].map(Int.init)
        return reflect ? .reflectPad(sides) : .pad(sides)
    }

    /// A Pad of integer codes (onnxruntime's QOperator pads them before a max pool) must pad with the code that
    /// stands for 0, their zero point, to be the zero padding the canonical graph has.
    private mutating func checkPadsWithZeroPoint(_ node: ONNXNode, _ codes: Quantization) throws {
        guard case .string("constant")? = attribute(node, "mode") ?? .string("constant") else {
            throw ImportError.unsupported(.node(node.label), problem: "a Pad of codes that is not constant padding")
        }
        var value: Int32 = 0
        if node.inputs.count > 2, !node.inputs[2].isEmpty {
            guard let ref = refs[node.inputs[2]], let stored = try decoder.codes(ref).first else {
                throw ImportError.mismatch(
                    .node(node.label), expected: "a stored constant_value", found: "'\(node.inputs[2])'")
            }
            value = stored
        }
        guard value == codes.zeroPoints[0] else {
            throw ImportError.unsupported(
                .node(node.label),
                problem: "pads codes with \(value), not their zero point \(codes.zeroPoints[0]) (which stands for 0)")
        }
    }

    mutating func constant(_ node: ONNXNode) throws {
        guard case .tensor(var tensor)? = attribute(node, "value"), let out = node.outputs.first else {
            throw ImportError.unsupported(.node(node.label), problem: "Constant without a tensor value")
        }
        tensor.name = out
        refs[out] = tensor
        if let element = ONNXTensorDecoder.element(of: tensor.dataType), element != .int64, element != .int32 {
            floats[out] = try decoder.floats(tensor)
        }
    }

    // MARK: attribute and input helpers

    func attribute(_ node: ONNXNode, _ name: String) -> ONNXAttribute? { node.attributes[name] }

    func ints(_ node: ONNXNode, _ name: String) -> [Int64] {
        if case .ints(let values)? = node.attributes[name] { return values }
        return []
    }

    func int(_ node: ONNXNode, _ name: String, _ fallback: Int64) -> Int64 {
        if case .int(let values)? = node.attributes[name] { return values }
        return fallback
    }

    func float(_ node: ONNXNode, _ name: String, _ fallback: Float) -> Float {
        if case .float(let values)? = node.attributes[name] { return values }
        return fallback
    }

    func uniform(_ node: ONNXNode, _ name: String, default value: Int) throws -> Int {
        let values = ints(node, name)
        if values.isEmpty { return value }
        guard values.count == 2, values[0] == values[1], values[0] > 0, values[0] < 64 else {
            throw ImportError.mismatch(
                .node(node.label), expected: "\(name) equal on both axes, from 1 to 63", found: "\(values)")
        }
        return Int(values[0])
    }

    func padsAttribute(_ node: ONNXNode) throws -> [Int] {
        if case .string(let autoPad)? = node.attributes["auto_pad"], autoPad != "NOTSET", autoPad != "VALID" {
            throw ImportError.unsupported(.node(node.label), problem: "auto_pad \(autoPad)")
        }
        let pads = ints(node, "pads")
        if pads.isEmpty { return [0, 0, 0, 0] }
        guard pads.count == 4, pads.allSatisfy({ $0 >= 0 && $0 < 64 }) else {
            throw ImportError.mismatch(.node(node.label), expected: "4 pads from 0 to 63", found: "\(pads)")
        }
        return [Int(pads[0]), Int(pads[1]), Int(pads[2]), Int(pads[3])]
    }

    func weight(_ node: ONNXNode, _ index: Int, _ role: String) throws -> Tensor {
        guard index < node.inputs.count, !node.inputs[index].isEmpty else {
            throw ImportError.malformed(.node(node.label), problem: "missing input \(role)")
        }
        guard let tensor = floats[node.inputs[index]] else {
            throw ImportError.structure(
                .node(node.label), problem: "input \(role) '\(node.inputs[index])' is not a stored float initializer")
        }
        return tensor
    }

}
