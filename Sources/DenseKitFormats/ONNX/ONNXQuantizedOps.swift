import DenseKitGraph

/// onnxruntime's integer quantisation, both of its formats, read as float ops with the quantisation
/// beside them:
/// - QDQ: a DequantizeLinear of a stored tensor is that tensor, its codes kept (`Tensor.quantized`); a
///   QuantizeLinear of an activation is a `fakeQuantize` node; a DequantizeLinear of one is the identity,
///   once its parameters are checked against the codes it reads.
/// - QOperator: each QLinear operator is the float op it computes on dequantised values, then a
///   `fakeQuantize` of its output (the integer arithmetic that reproduces it is the executor's).
/// `OpGraph.foldingQuantization()` then moves every `fakeQuantize` onto the op beside it.
extension ONNXOps {
    mutating func quantized(_ node: ONNXNode, output: String) throws -> [OpGraph.Node] {
        let op = node.opType
        let known = ["QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul"]
        let contrib = [
            "QLinearConcat", "QLinearAveragePool", "QLinearGlobalAveragePool", "QGemm", "QLinearAdd", "QLinearMul",
            "QLinearSoftmax",
        ]
        guard
            (known.contains(op) && (node.domain.isEmpty || node.domain == "ai.onnx"))
                || (contrib.contains(op) && node.domain == "com.microsoft")
        else {
            throw ImportError.unsupported(
                .node(node.label),
                problem: "quantisation operator '\(op)' (domain '\(node.domain)') is not read; DenseKit reads "
                    + "QuantizeLinear, DequantizeLinear, QLinearConv, QLinearMatMul and onnxruntime's QLinearConcat, "
                    + "QLinearAveragePool, QLinearGlobalAveragePool, QGemm, QLinearAdd and QLinearMul (of a "
                    + "constant) and QLinearSoftmax")
        }
        switch op {
        case "DequantizeLinear":
            let x = try input(node, 0, "x")
            if refs[x] != nil {
                floats[output] = try quantizedConstant(node, codes: 0, scale: 1, zeroPoint: 2)
                return []
            }
            let q = try parameters(node, scale: 1, zeroPoint: 2)
            try expectCodes(x, q, node)
            return [OpGraph.Node(label: node.label, op: .passThrough, inputs: [x], output: output)]
        case "QuantizeLinear":
            let x = try input(node, 0, "x")
            if let coded = quantizedValues[x] {
                throw ImportError.mismatch(
                    .node(node.label), expected: "float input", found: "codes of \(coded.storage.rawValue)")
            }
            let q = try parameters(node, scale: 1, zeroPoint: 2)
            return try fakeQuantized(node, output: output, q: q, reading: [x], op: nil)
        case "QLinearConv":
            let x = try input(node, 0, "x")
            let xq = try parameters(node, scale: 1, zeroPoint: 2)
            try expectCodes(x, xq, node)
            let floatInputs = try floatOperands(node, x, xq, weight: 3, role: "w", bias: 8)
            var conv = try self.conv(ONNXNode(copying: node, inputs: floatInputs))
            conv.inputQuantization = xq
            let yq = try parameters(node, scale: 6, zeroPoint: 7)
            return try fakeQuantized(node, output: output, q: yq, reading: [x], op: .conv(conv))
        case "QLinearConcat":
            let yq = try parameters(node, scale: 0, zeroPoint: 1)
            var parts: [String] = []
            for start in stride(from: 2, to: node.inputs.count, by: 3) {
                let x = try input(node, start, "x")
                try expectCodes(x, try parameters(node, scale: start + 1, zeroPoint: start + 2), node)
                parts.append(x)
            }
            guard !parts.isEmpty, (node.inputs.count - 2) % 3 == 0 else {
                throw ImportError.mismatch(
                    .node(node.label), expected: "inputs in threes (value, scale, zero point) after the output's",
                    found: "\(node.inputs.count) inputs")
            }
            return try fakeQuantized(node, output: output, q: yq, reading: parts, op: try concat(node))
        case "QLinearAveragePool", "QLinearGlobalAveragePool":
            guard int(node, "channels_last", 0) == 0 else {
                throw ImportError.unsupported(.node(node.label), problem: "channels_last 1 (NHWC codes)")
            }
            let x = try input(node, 0, "x")
            try expectCodes(x, try parameters(node, scale: 1, zeroPoint: 2), node)
            let yq = try parameters(node, scale: 3, zeroPoint: 4)
            let pooling: OpGraph.Op =
                op == "QLinearGlobalAveragePool" ? .globalAveragePool : .pool(try pool(node, .average))
            return try fakeQuantized(node, output: output, q: yq, reading: [x], op: pooling)
        case "QLinearMatMul":  // a classifier: codes times a stored matrix [in, out]
            let a = try input(node, 0, "a")
            let aq = try parameters(node, scale: 1, zeroPoint: 2)
            try expectCodes(a, aq, node)
            let weightName = try input(node, 3, "b")
            floats[weightName] = try quantizedConstant(node, codes: 3, scale: 4, zeroPoint: 5, axis: 1)
            var linear = try matMul(ONNXNode(copying: node, inputs: [a, weightName]))
            linear.inputQuantization = aq
            let yq = try parameters(node, scale: 6, zeroPoint: 7)
            return try fakeQuantized(node, output: output, q: yq, reading: [a], op: .linear(linear))
        case "QLinearAdd", "QLinearMul":
            // Of a stored constant: the bias after a QLinearMatMul, or preprocessing on the input's codes (a Keras
            // `Rescaling`). The constant keeps its codes; `OpGraph.normalized()` decides which it is.
            let operands = [try input(node, 0, "A"), try input(node, 3, "B")]
            guard let constantIndex = operands.firstIndex(where: { refs[$0] != nil }),
                let x = operands.first(where: { refs[$0] == nil })
            else {
                throw ImportError.unsupported(
                    .node(node.label),
                    problem: "\(op) of two activations (a DenseNet adds and multiplies only constants)")
            }
            try expectCodes(
                x, try parameters(node, scale: x == operands[0] ? 1 : 4, zeroPoint: x == operands[0] ? 2 : 5), node)
            let constant = try quantizedConstant(
                node, codes: constantIndex * 3, scale: constantIndex * 3 + 1, zeroPoint: constantIndex * 3 + 2)
            let yq = try parameters(node, scale: 6, zeroPoint: 7)
            return try fakeQuantized(
                node, output: output, q: yq, reading: [x],
                op: op == "QLinearMul" ? .scale(constant) : .addBias(constant))
        case "QLinearSoftmax":
            let x = try input(node, 0, "X")
            try expectCodes(x, try parameters(node, scale: 1, zeroPoint: 2), node)
            let yq = try parameters(node, scale: 3, zeroPoint: 4)
            return try fakeQuantized(node, output: output, q: yq, reading: [x], op: try softmax(node))
        default:  // QGemm
            let a = try input(node, 0, "A")
            let aq = try parameters(node, scale: 1, zeroPoint: 2)
            try expectCodes(a, aq, node)
            guard float(node, "alpha", 1) == 1 else {
                throw ImportError.unsupported(.node(node.label), problem: "QGemm with alpha other than 1")
            }
            let floatInputs = try floatOperands(node, a, aq, weight: 3, role: "B", bias: 6)
            var linear = try gemm(ONNXNode(copying: node, inputs: floatInputs))
            linear.inputQuantization = aq
            guard node.inputs.count > 7, !node.inputs[7].isEmpty else {
                // No output scale: the int32 result dequantised, a float output.
                return [OpGraph.Node(label: node.label, op: .linear(linear), inputs: [a], output: output)]
            }
            let yq = try parameters(node, scale: 7, zeroPoint: 8)
            return try fakeQuantized(node, output: output, q: yq, reading: [a], op: .linear(linear))
        }
    }

    /// `op` (when given) reading `inputs`, then the quantisation of its output to `q`: the output holds codes.
    private mutating func fakeQuantized(
        _ node: ONNXNode, output: String, q: Quantization, reading inputs: [String], op: OpGraph.Op?
    ) throws -> [OpGraph.Node] {
        guard q.isPerTensor else {
            throw ImportError.unsupported(.node(node.label), problem: "per-channel quantisation of an activation")
        }
        quantizedValues[output] = q
        guard let op else {
            return [OpGraph.Node(label: node.label, op: .fakeQuantize(q), inputs: inputs, output: output)]
        }
        let computed = output + "#\(node.opType).float"
        return [
            OpGraph.Node(label: node.label, op: op, inputs: inputs, output: computed),
            OpGraph.Node(label: node.label, op: .fakeQuantize(q), inputs: [computed], output: output),
        ]
    }

    /// Checks that `value` holds codes of `q` (what made it says so), as the operator reading it declares.
    private func expectCodes(_ value: String, _ q: Quantization, _ node: ONNXNode) throws {
        guard let coded = quantizedValues[value] else {
            throw ImportError.mismatch(
                .node(node.label),
                expected: "integer codes in '\(value)' (from a QuantizeLinear or a QLinear operator)",
                found: "float values")
        }
        guard coded == q else {
            throw ImportError.mismatch(
                .node(node.label),
                expected: "the scale and zero point '\(value)' was quantised with (\(Self.describe(coded)))",
                found: Self.describe(q))
        }
    }

    private static func describe(_ q: Quantization) -> String {
        q.isPerTensor
            ? "scale \(q.scales[0]), zero point \(q.zeroPoints[0]) of \(q.storage.rawValue)"
            : "\(q.scales.count) scales of \(q.storage.rawValue) on axis \(q.axis ?? 0)"
    }

    private func input(_ node: ONNXNode, _ index: Int, _ role: String) throws -> String {
        guard index < node.inputs.count, !node.inputs[index].isEmpty else {
            throw ImportError.malformed(.node(node.label), problem: "missing input \(role)")
        }
        return node.inputs[index]
    }

    /// The scale and zero point at inputs `scale` and `zeroPoint` (absent: 0 of UINT8, as ONNX says), per
    /// tensor, or along the node's `axis` (`axis` when given) for more than one scale; checked for sense.
    private mutating func parameters(
        _ node: ONNXNode, scale: Int, zeroPoint: Int, axis fixedAxis: Int? = nil
    ) throws -> Quantization {
        let scaleName = try input(node, scale, "scale")
        guard let scales = floats[scaleName] else {
            throw ImportError.structure(
                .node(node.label), problem: "scale '\(scaleName)' is not a stored float tensor")
        }
        var storage = Quantization.Storage.uint8
        var zeroPoints: [Int32] = [0]
        var zeroPointName = ""
        if zeroPoint < node.inputs.count, !node.inputs[zeroPoint].isEmpty {
            zeroPointName = node.inputs[zeroPoint]
            guard let ref = refs[zeroPointName], let type = ONNXTensorDecoder.quantizedStorage(of: ref.dataType) else {
                throw ImportError.structure(
                    .node(node.label),
                    problem: "zero point '\(zeroPointName)' is not a stored UINT8, INT8 or INT32 tensor")
            }
            storage = type
            zeroPoints = try decoder.codes(ref)
        }
        if scales.count > 1 && zeroPoints.count == 1 {
            zeroPoints = Array(repeating: zeroPoints[0], count: scales.count)
        }
        guard int(node, "block_size", 0) == 0 else {
            throw ImportError.unsupported(.node(node.label), problem: "blocked quantisation (block_size)")
        }
        let axis = scales.count > 1 ? (fixedAxis ?? Int(int(node, "axis", 1))) : nil
        let q = Quantization(storage: storage, scales: scales.values, zeroPoints: zeroPoints, axis: axis)
        try check(q, axisLength: nil, node, scale: scaleName, zeroPoint: zeroPointName)
        return q
    }

    /// Refuses parameters that make no sense, naming the scale or zero point at fault.
    private func check(_ q: Quantization, axisLength: Int?, _ node: ONNXNode, scale: String, zeroPoint: String) throws {
        guard let (inScales, expected, found) = q.problem(axisLength: axisLength) else { return }
        throw ImportError.mismatch(
            .weight(
                of: .node(node.label), role: inScales || zeroPoint.isEmpty ? "scale" : "zero point",
                name: inScales || zeroPoint.isEmpty ? scale : zeroPoint),
            expected: expected, found: found)
    }

    /// The stored codes at input `codes` as a float tensor (their dequantised values) that keeps them, with
    /// the scale and zero point at `scale` and `zeroPoint`: what DequantizeLinear of a weight gives.
    private mutating func quantizedConstant(
        _ node: ONNXNode, codes index: Int, scale: Int, zeroPoint: Int, axis fixedAxis: Int? = nil
    ) throws -> Tensor {
        let name = try input(node, index, "x")
        guard let ref = refs[name], let storage = ONNXTensorDecoder.quantizedStorage(of: ref.dataType) else {
            throw ImportError.structure(
                .node(node.label), problem: "input '\(name)' is not a stored UINT8, INT8 or INT32 tensor")
        }
        let shape = ref.dims.map { Int($0) }
        var q = try parameters(node, scale: scale, zeroPoint: zeroPoint, axis: fixedAxis)
        if let axis = q.axis {
            let resolved = axis < 0 ? axis + shape.count : axis
            guard shape.indices.contains(resolved) else {
                throw ImportError.mismatch(
                    .node(node.label), expected: "a quantisation axis of the \(shape.count)-D '\(name)'",
                    found: "axis \(axis)")
            }
            q.axis = resolved
            let zeroPointName = zeroPoint < node.inputs.count ? node.inputs[zeroPoint] : ""
            try check(q, axisLength: shape[resolved], node, scale: node.inputs[scale], zeroPoint: zeroPointName)
        }
        let zeroPointGiven = zeroPoint < node.inputs.count && !node.inputs[zeroPoint].isEmpty
        guard q.storage == storage || !zeroPointGiven else {
            throw ImportError.mismatch(
                .tensor(name), expected: "codes of its zero point's type (\(q.storage.rawValue))",
                found: storage.rawValue)
        }
        q.storage = storage
        // Codes outside their type (from a typed int32 field) are refused by the validation every model passes.
        let codes = try decoder.codes(ref)
        var tensor = Tensor(
            name: name, shape: shape, values: QuantizedCodes.dequantize(codes, q, shape: shape))
        tensor.quantized = QuantizedCodes(quantization: q, codes: codes)
        return tensor
    }

    /// What the float operator's reader takes for a QLinearConv or a QGemm: its input `x`, its weight (codes at
    /// input `weight`, named `role` in messages, scale and zero point after them, per output channel) and, when
    /// present, its INT32 bias at input `bias`, both registered as float constants that keep their codes.
    private mutating func floatOperands(
        _ node: ONNXNode, _ x: String, _ xq: Quantization, weight: Int, role: String, bias biasIndex: Int
    ) throws -> [String] {
        let weightName = try input(node, weight, role)
        floats[weightName] = try quantizedConstant(
            node, codes: weight, scale: weight + 1, zeroPoint: weight + 2, axis: 0)
        guard node.inputs.count > biasIndex, !node.inputs[biasIndex].isEmpty else { return [x, weightName] }
        return [x, weightName, try bias(node, index: biasIndex, input: xq, weight: weightName)]
    }

    /// A QLinear operator's INT32 bias at `index`: its scale is the input's times the weight's (per output).
    private mutating func bias(_ node: ONNXNode, index: Int, input: Quantization, weight: String) throws -> String {
        let name = try self.input(node, index, "bias")
        guard let ref = refs[name], ref.dataType == 6, let weightCodes = floats[weight]?.quantized else {
            throw ImportError.mismatch(
                .node(node.label), expected: "a stored INT32 bias", found: "'\(name)' of another kind")
        }
        let codes = try decoder.codes(ref)
        let wq = weightCodes.quantization
        let outputs = wq.scales.count  // 1 per tensor (validated), one per output channel otherwise
        let count = floats[weight]?.shape.first ?? 0
        guard codes.count == count else {
            throw ImportError.mismatch(
                .tensor(name), expected: "\(count) values (one per output)", found: "\(codes.count)")
        }
        let scales = (0..<outputs).map { input.scales[0] * wq.scale($0) }
        let q = Quantization(
            storage: .int32, scales: scales, zeroPoints: Array(repeating: 0, count: outputs),
            axis: outputs > 1 ? 0 : nil)
        var tensor = Tensor(
            name: name, shape: [codes.count], values: QuantizedCodes.dequantize(codes, q, shape: [count]))
        tensor.quantized = QuantizedCodes(quantization: q, codes: codes)
        floats[name] = tensor
        return name
    }
}

extension ONNXNode {
    /// This node with other inputs: a QLinear operator read through the float operator's reader.
    init(copying node: ONNXNode, inputs: [String]) {
        self = node
        self.inputs = inputs
    }
}
