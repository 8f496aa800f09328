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

    package mutating func convert(_ n: ONNXNode) throws -> OpGraph.Node? {
        guard n.domain.isEmpty || n.domain == "ai.onnx" else {
            throw ImportError.unsupported(.node(n.label), problem: "operator domain '\(n.domain)' is not supported")
        }
        guard let out = n.outputs.first, !out.isEmpty else {
            throw ImportError.malformed(.node(n.label), problem: "has no output")
        }
        let op: OpGraph.Op
        switch n.opType {
        case "Conv": op = .conv(try conv(n))
        case "BatchNormalization": op = .batchNorm(try batchNormalization(n))
        case "Relu": op = .relu
        case "MaxPool": op = .pool(try pool(n, .max))
        case "AveragePool": op = .pool(try pool(n, .average))
        case "GlobalAveragePool": op = .globalAveragePool
        case "GlobalMaxPool": op = .globalMaxPool
        case "ReduceMean": op = try globalReduction(n, .globalAveragePool)
        case "ReduceMax": op = try globalReduction(n, .globalMaxPool)
        case "Sigmoid": op = .sigmoid
        case "Tanh": op = .tanh
        case "Concat": op = try concat(n)
        case "Gemm": op = .linear(try gemm(n))
        case "MatMul": op = .linear(try matMul(n))
        case "Add": op = .addBias(try add(n))
        case "Softmax": op = try softmax(n)
        case "Identity", "Dropout", "Flatten", "Reshape", "Squeeze": op = .passThrough
        case "Cast":
            guard let castOp = try cast(n) else { return nil }
            op = castOp
        case "Pad": op = .pad(try pad(n))
        case "Transpose": op = .transpose(ints(n, "perm").map(Int.init))
        case "Constant":
            try constant(n)
            return nil
        default:
            throw ImportError.mismatch(
                .node(n.label),
                expected:
                    """
                    an operator of a DenseNet (Conv, BatchNormalization, Relu, MaxPool, AveragePool, Concat; in \
                    the head GlobalAveragePool, GlobalMaxPool, Gemm, MatMul, Sigmoid, Softmax, Tanh)
                    """,
                found: "\(n.opType) (opset \(opset))")
        }
        let activations = n.inputs.filter { !$0.isEmpty && refs[$0] == nil && floats[$0] == nil }
        guard !activations.isEmpty else {
            throw ImportError.unsupported(.node(n.label), problem: "operator on constants only is not supported")
        }
        return OpGraph.Node(label: n.label, op: op, inputs: activations, output: out)
    }

    // MARK: operators

    private mutating func conv(_ n: ONNXNode) throws -> Conv2D {
        let w = try weight(n, 1, "W")
        guard w.shape.count == 4 else {
            throw ImportError.mismatch(
                .weight(of: .node(n.label), role: "weight", name: w.name), expected: "4 dims (OIHW)",
                found: "\(w.shape.count)")
        }
        guard int(n, "group", 1) == 1 else {
            throw ImportError.mismatch(
                .node(n.label), expected: "group 1", found: "group \(int(n, "group", 1))")
        }
        guard ints(n, "dilations").allSatisfy({ $0 == 1 }) else {
            throw ImportError.mismatch(
                .node(n.label), expected: "dilations [1, 1]", found: "\(ints(n, "dilations"))")
        }
        let kernel = ints(n, "kernel_shape").map(Int.init)
        guard kernel.isEmpty || kernel == [w.shape[2], w.shape[3]] else {
            throw ImportError.mismatch(
                .node(n.label), expected: "kernel_shape [\(w.shape[2]), \(w.shape[3])] (the weight's shape \(w.shape))",
                found: "kernel_shape \(kernel)")
        }
        guard w.shape[2] == w.shape[3] else {
            throw ImportError.unsupported(.node(n.label), problem: "non-square kernel \(w.shape[2])x\(w.shape[3])")
        }
        var b: Tensor? = nil
        if n.inputs.count > 2, !n.inputs[2].isEmpty {
            b = try weight(n, 2, "B")
            guard b?.count == w.shape[0] else {
                throw ImportError.mismatch(
                    .weight(of: .node(n.label), role: "bias", name: b?.name ?? ""),
                    expected: "\(w.shape[0]) values (one per output channel)",
                    found: "\(b?.count ?? 0)")
            }
        }
        let stride = try uniform(n, "strides", default: 1)
        let pads = try padsAttribute(n)
        return Conv2D(weight: w, bias: b, stride: stride, pads: pads)
    }

    private mutating func batchNormalization(_ n: ONNXNode) throws -> BatchNorm {
        guard int(n, "training_mode", 0) == 0 else {
            throw ImportError.unsupported(.node(n.label), problem: "training-mode BatchNormalization")
        }
        let parts = try (1...4).map { try weight(n, $0, ["scale", "B", "input_mean", "input_var"][$0 - 1]) }
        let c = parts[0].count
        guard parts.allSatisfy({ $0.count == c }) else {
            throw ImportError.structure(
                .node(n.label), problem: "scale, bias, mean and variance sizes differ (\(parts.map(\.count)))")
        }
        return BatchNorm(
            gamma: parts[0], beta: parts[1], mean: parts[2], variance: parts[3], epsilon: float(n, "epsilon", 1e-5))
    }

    private func pool(_ n: ONNXNode, _ kind: Pool2D.Kind) throws -> Pool2D {
        let kernel = ints(n, "kernel_shape")
        guard kernel.count == 2, kernel[0] == kernel[1], kernel[0] > 0, kernel[0] < 64 else {
            throw ImportError.unsupported(.node(n.label), problem: "kernel_shape \(kernel) (square 2-D kernels only)")
        }
        guard int(n, "ceil_mode", 0) == 0 else {
            throw ImportError.unsupported(.node(n.label), problem: "ceil_mode 1")
        }
        guard ints(n, "dilations").allSatisfy({ $0 == 1 }) else {
            throw ImportError.unsupported(.node(n.label), problem: "dilated pooling")
        }
        let stride = try uniform(n, "strides", default: 1)
        return Pool2D(
            kind: kind, kernel: Int(kernel[0]), stride: stride,
            pads: try padsAttribute(n),
            countIncludePad: int(n, "count_include_pad", 0) != 0)
    }

    /// ReduceMean or ReduceMax over H and W: a global pool (axes from the attribute, or the input from opset 18).
    private mutating func globalReduction(_ n: ONNXNode, _ pool: OpGraph.Op) throws -> OpGraph.Op {
        var axes = ints(n, "axes")
        if n.inputs.count > 1, let ref = refs[n.inputs[1]] { axes = try decoder.integers(ref) }
        guard Set(axes.map { $0 < 0 ? $0 + 4 : $0 }) == [2, 3] else {
            throw ImportError.mismatch(
                .node(n.label), expected: "axes [2, 3] (the spatial axes of NCHW)", found: "\(axes)")
        }
        return pool
    }

    private func concat(_ n: ONNXNode) throws -> OpGraph.Op {
        let axis = int(n, "axis", 1)
        guard axis == 1 || axis == -3 else {
            throw ImportError.unsupported(
                .node(n.label), problem: "Concat on axis \(axis) (DenseNet concatenates channels, axis 1 of NCHW)")
        }
        return .concat
    }

    private mutating func gemm(_ n: ONNXNode) throws -> Linear {
        guard int(n, "transA", 0) == 0 else {
            throw ImportError.unsupported(.node(n.label), problem: "Gemm with transA")
        }
        var w = try weight(n, 1, "B")
        guard w.shape.count == 2 else {
            throw ImportError.mismatch(
                .weight(of: .node(n.label), role: "weight", name: w.name), expected: "2 dims", found: "\(w.shape.count)"
            )
        }
        if int(n, "transB", 0) == 0 { w = w.transposed() }
        let alpha = float(n, "alpha", 1)
        let beta = float(n, "beta", 1)
        if alpha != 1 { w.values = w.values.map { $0 * alpha } }
        var b: Tensor? = nil
        if n.inputs.count > 2, !n.inputs[2].isEmpty {
            var bias = try weight(n, 2, "C")
            guard bias.count == w.shape[0] else {
                throw ImportError.mismatch(
                    .weight(of: .node(n.label), role: "bias", name: bias.name),
                    expected: "\(w.shape[0]) values (one per output)",
                    found: "\(bias.count)")
            }
            if beta != 1 { bias.values = bias.values.map { $0 * beta } }
            bias.shape = [bias.count]
            b = bias
        }
        return Linear(weight: w, bias: b)
    }

    private mutating func matMul(_ n: ONNXNode) throws -> Linear {
        let w = try weight(n, 1, "B")
        guard w.shape.count == 2 else {
            throw ImportError.mismatch(
                .weight(of: .node(n.label), role: "weight", name: w.name), expected: "2 dims", found: "\(w.shape.count)"
            )
        }
        return Linear(weight: w.transposed(), bias: nil)
    }

    private mutating func add(_ n: ONNXNode) throws -> Tensor {
        guard n.inputs.count == 2 else { throw ImportError.malformed(.node(n.label), problem: "needs 2 inputs") }
        let constant = floats[n.inputs[1]] != nil ? 1 : 0
        return try weight(n, constant, "B")
    }

    private func softmax(_ n: ONNXNode) throws -> OpGraph.Op {
        let axis = int(n, "axis", opset >= 13 ? -1 : 1)
        guard axis == -1 || axis == 1 else {
            throw ImportError.unsupported(.node(n.label), problem: "Softmax on axis \(axis)")
        }
        return .softmax
    }

    /// A Cast of activations, or nil when it casts a stored weight (folded into a constant).
    private mutating func cast(_ n: ONNXNode) throws -> OpGraph.Op? {
        guard let to = attribute(n, "to").flatMap({ if case .int(let v) = $0 { return v } else { return nil } }) else {
            throw ImportError.malformed(.node(n.label), problem: "Cast without 'to'")
        }
        if var constant = floats[n.inputs.first ?? ""] {
            // A Cast of a stored weight (float16 exports): fold it, keeping the stored dtype.
            guard to == 1 else {
                throw ImportError.unsupported(
                    .node(n.label), problem: "Cast of a weight to \(ONNXTensorDecoder.typeName(Int32(to)))")
            }
            constant.name = n.outputs[0]
            floats[n.outputs[0]] = constant
            return nil
        }
        guard to == 1 else {
            throw ImportError.unsupported(
                .node(n.label), problem: "Cast of activations to \(ONNXTensorDecoder.typeName(Int32(to)))")
        }
        return .passThrough
    }

    private mutating func pad(_ n: ONNXNode) throws -> [Int] {
        if case .string(let mode)? = attribute(n, "mode"), mode != "constant" {
            throw ImportError.unsupported(.node(n.label), problem: "Pad mode '\(mode)' (only constant zero padding)")
        }
        var p = ints(n, "pads")
        if p.isEmpty, n.inputs.count > 1, let ref = refs[n.inputs[1]] { p = try decoder.integers(ref) }
        if n.inputs.count > 2, !n.inputs[2].isEmpty, let v = floats[n.inputs[2]], v.values.contains(where: { $0 != 0 })
        {
            throw ImportError.unsupported(.node(n.label), problem: "Pad with a non-zero value")
        }
        guard p.count == 8, p[0] == 0, p[1] == 0, p[4] == 0, p[5] == 0, p.allSatisfy({ $0 >= 0 && $0 < 64 }) else {
            throw ImportError.mismatch(
                .node(n.label), expected: "8 pads padding only H and W of NCHW, each 0 to 63", found: "\(p)")
        }
        return [p[2], p[3], p[6], p[7]].map(Int.init)
    }

    private mutating func constant(_ n: ONNXNode) throws {
        guard case .tensor(var t)? = attribute(n, "value"), let out = n.outputs.first else {
            throw ImportError.unsupported(.node(n.label), problem: "Constant without a tensor value")
        }
        t.name = out
        refs[out] = t
        if let e = ONNXTensorDecoder.element(of: t.dataType), e != .int64, e != .int32 {
            floats[out] = try decoder.floats(t)
        }
    }

    // MARK: attribute and input helpers

    private func attribute(_ n: ONNXNode, _ name: String) -> ONNXAttribute? { n.attributes[name] }

    private func ints(_ n: ONNXNode, _ name: String) -> [Int64] {
        if case .ints(let v)? = n.attributes[name] { return v }
        return []
    }

    private func int(_ n: ONNXNode, _ name: String, _ fallback: Int64) -> Int64 {
        if case .int(let v)? = n.attributes[name] { return v }
        return fallback
    }

    private func float(_ n: ONNXNode, _ name: String, _ fallback: Float) -> Float {
        if case .float(let v)? = n.attributes[name] { return v }
        return fallback
    }

    private func uniform(_ n: ONNXNode, _ name: String, default value: Int) throws -> Int {
        let v = ints(n, name)
        if v.isEmpty { return value }
        guard v.count == 2, v[0] == v[1], v[0] > 0, v[0] < 64 else {
            throw ImportError.mismatch(
                .node(n.label), expected: "\(name) equal on both axes, from 1 to 63", found: "\(v)")
        }
        return Int(v[0])
    }

    private func padsAttribute(_ n: ONNXNode) throws -> [Int] {
        if case .string(let autoPad)? = n.attributes["auto_pad"], autoPad != "NOTSET", autoPad != "VALID" {
            throw ImportError.unsupported(.node(n.label), problem: "auto_pad \(autoPad)")
        }
        let p = ints(n, "pads")
        if p.isEmpty { return [0, 0, 0, 0] }
        guard p.count == 4, p.allSatisfy({ $0 >= 0 && $0 < 64 }) else {
            throw ImportError.mismatch(.node(n.label), expected: "4 pads from 0 to 63", found: "\(p)")
        }
        return [Int(p[0]), Int(p[1]), Int(p[2]), Int(p[3])]
    }

    private func weight(_ n: ONNXNode, _ index: Int, _ role: String) throws -> Tensor {
        guard index < n.inputs.count, !n.inputs[index].isEmpty else {
            throw ImportError.malformed(.node(n.label), problem: "missing input \(role)")
        }
        guard let t = floats[n.inputs[index]] else {
            throw ImportError.structure(
                .node(n.label), problem: "input \(role) '\(n.inputs[index])' is not a stored float initializer")
        }
        return t
    }

}
