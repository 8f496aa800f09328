import DenseKitGraph

/// A value-level graph of canonical operations on NCHW activations: the step between an ONNX
/// node list and the recognised DenseNet. Exporter artefacts (Identity, Dropout, Flatten,
/// Reshape, Pad, input Transpose, MatMul+Add) are still present here and removed by `normalized()`.
package struct OpGraph {
    package enum Op {
        case conv(Conv2D)
        case batchNorm(BatchNorm)
        case relu
        case pool(Pool2D)
        case globalAveragePool
        case globalMaxPool
        case concat
        case linear(Linear)
        /// Adds a constant: the Add after a MatMul classifier, Caffe's Scale layer's bias after a
        /// BatchNormalization, or preprocessing on the input.
        case addBias(Tensor)
        /// Multiplies by a constant: Caffe's Scale layer's factor after a BatchNormalization, or
        /// preprocessing on the input.
        case scale(Tensor)
        /// Subtracts a constant: preprocessing on the input's int8 codes (TensorFlow Lite's SUB; of float values
        /// a SUB is read as the Add of the negated constant).
        case subtract(Tensor)
        case softmax
        case sigmoid
        case tanh
        /// Identity, Dropout, Flatten, Reshape, Squeeze and a float Cast of activations: taken as the
        /// identity, their shape arguments not read. In every export DenseKit knows they only flatten
        /// the pooled (N, C, 1, 1) features before the classifier; the recognizer checks the
        /// structure around them, not what they would do to a shape.
        case passThrough
        /// Zero padding of H and W: top, left, bottom, right.
        case pad([Int])
        /// Padding of H and W by reflection (top, left, bottom, right): only before a blur pool's filter.
        case reflectPad([Int])
        /// A Conv with one 1-channel filter per channel (group = channels): only as a blur pool's filter.
        case depthwiseConv(Conv2D)
        /// timm's `BlurPool2d` over `channels` channels: a reflection Pad and the depthwise binomial filter
        /// after it, merged by `normalized()`.
        case blurPool(BlurPool2D, channels: Int)
        case transpose([Int])
        /// Rounds its input to the codes of a quantisation and back (a QuantizeLinear and the DequantizeLinear
        /// after it, or a QLinear operator's output); moved onto the op beside it by `foldingQuantization()`.
        case fakeQuantize(Quantization)

        /// What the op is, for error messages.
        package var name: String {
            switch self {
            case .conv: return "a Conv"
            case .batchNorm: return "a BatchNormalization"
            case .relu: return "a ReLU"
            case .pool(let pool): return pool.kind == .max ? "a MaxPool" : "an AveragePool"
            case .globalAveragePool: return "a global average pool"
            case .globalMaxPool: return "a global max pool"
            case .concat: return "a Concat"
            case .linear: return "a linear layer"
            case .addBias: return "an Add"
            case .scale: return "a Mul"
            case .subtract: return "a Sub"
            case .softmax: return "a Softmax"
            case .sigmoid: return "a Sigmoid"
            case .tanh: return "a Tanh"
            case .passThrough: return "a pass-through"
            case .pad: return "a Pad"
            case .reflectPad: return "a reflection Pad"
            case .depthwiseConv: return "a depthwise Conv"
            case .blurPool: return "a blur pool"
            case .transpose: return "a Transpose"
            case .fakeQuantize: return "a QuantizeLinear"
            }
        }
    }

    package struct Node {
        package var label: String
        package var op: Op
        /// Activation inputs only; weights live inside `op`.
        package var inputs: [String]
        package var output: String
    }

    package var nodes: [Node]
    package var input: String
    package var output: String
    /// Mul and Add nodes on the input before the stem, in order, each as per-channel values (one
    /// value: every channel); set by `normalized()`.
    package var inputSteps: [InputStep] = []
    /// Mul and Add nodes folded into the BatchNormalization before them by `normalized()`.
    package var foldedIntoBatchNorms = 0
    /// The quantisation of the graph's output after its last op (a softmax's codes); set by
    /// `foldingQuantization()`.
    package var outputQuantization: Quantization? = nil

    package struct InputStep {
        package var label: String
        package var scale: [Float]
        package var offset: [Float]
        /// Set when the step computes on the input's codes (onnxruntime's QLinearMul or QLinearAdd, or a QDQ Mul or
        /// Add between quantisations): the codes it reads and its constant's, and what its result is rounded to.
        package var codes: StepCodes? = nil
    }

    package struct StepCodes {
        package var operation: QuantizedInputTransform.Step.Operation
        package var input: Quantization
        package var constant: QuantizedCodes
        package var output: Quantization? = nil
    }

    package init(nodes: [Node], input: String, output: String) {
        self.nodes = nodes
        self.input = input
        self.output = output
    }

    /// The input preprocessing as one transform over `channels` channels; on codes when its steps compute on them.
    package func inputTransform(channels: Int) throws -> InputTransform? {
        if inputSteps.contains(where: { $0.codes != nil }) { return try quantizedInputTransform(channels: channels) }
        var transform: InputTransform? = nil
        for step in inputSteps {
            guard [1, channels].contains(step.scale.count), [1, channels].contains(step.offset.count) else {
                throw ImportError.mismatch(
                    .node(step.label), expected: "one value or one per input channel (\(channels))",
                    found: "\(max(step.scale.count, step.offset.count))")
            }
            let next = InputTransform(
                scale: step.scale, offset: step.offset, channels: channels, origin: step.label)
            transform = transform.map { $0.followed(by: next) } ?? next
        }
        return transform
    }

    /// Steps that all compute on codes, each reading what the one before gave and quantising its result.
    private func quantizedInputTransform(channels: Int) throws -> InputTransform? {
        var steps: [QuantizedInputTransform.Step] = []
        var reads = inputSteps.first?.codes?.input
        for step in inputSteps {
            guard let codes = step.codes, codes.input == reads else {
                throw ImportError.unsupported(
                    .node(step.label), problem: "a float step among steps on the input's codes")
            }
            guard let output = codes.output else {
                throw ImportError.unsupported(
                    .node(step.label), problem: "its result on the input's codes is not quantised")
            }
            steps.append(
                QuantizedInputTransform.Step(
                    operation: codes.operation, constants: codes.constant.codes,
                    constantQuantization: codes.constant.quantization, output: output, origin: step.label))
            reads = output
        }
        guard let input = inputSteps.first?.codes?.input else { return nil }
        return QuantizedInputTransform(input: input, steps: steps).floatTransform(channels: channels)
    }

    /// A constant's values when it broadcasts per channel over an NCHW map ([C, 1, 1], [1, C, 1, 1])
    /// or, before the input's NHWC-to-NCHW Transpose, an NHWC one ([C], [1, 1, 1, C]); one value
    /// for a scalar; nil otherwise.
    package static func perChannel(_ constant: Tensor, nhwc: Bool) -> [Float]? {
        if constant.count == 1 { return constant.values }
        let shape = constant.shape
        if nhwc { return shape.dropLast().allSatisfy { $0 == 1 } ? constant.values : nil }
        guard shape.count >= 3, shape.suffix(2) == [1, 1], shape.dropLast(3).allSatisfy({ $0 == 1 }) else {
            return nil
        }
        return constant.values
    }

    /// Removes pass-through nodes, merges Pad into the conv or pool that consumes it, folds an Add of
    /// a constant into the Linear before it and a Mul or Add after a BatchNormalization into it (Caffe's
    /// Scale layer), and takes Mul and Add nodes on the input as `inputSteps`.
    package func normalized() throws -> OpGraph {
        var alias: [String: String] = [:]
        func resolve(_ value: String) -> String {
            var value = value
            while let target = alias[value] { value = target }
            return value
        }
        var readers: [String: Int] = [:]
        for node in nodes { for value in node.inputs { readers[value, default: 0] += 1 } }
        // Values that are the input, or it transposed or preprocessed: before the Transpose of an NHWC
        // input, a per-channel constant is laid out NHWC. The input is NHWC when a Transpose to NCHW reads it or
        // its preprocessing (tf2onnx transposes after a Keras model's Rescaling and Normalization).
        var preprocessing: Set<String> = [input]
        var nhwcInput = false
        for node in nodes where node.inputs.first.map(preprocessing.contains) == true {
            switch node.op {
            case .transpose([0, 3, 1, 2]): nhwcInput = true
            case .scale, .addBias, .subtract, .fakeQuantize, .passThrough: preprocessing.insert(node.output)
            default: break
            }
        }
        var inputValues: [String: Bool] = [input: nhwcInput]  // value -> whether it is NHWC
        var steps: [InputStep] = []
        var folded = 0
        var pads: [String: (input: String, pads: [Int], label: String)] = [:]
        var reflectPads: [String: (input: String, pads: [Int], label: String)] = [:]
        var kept: [Node] = []
        var byOutput: [String: Int] = [:]
        var removed = Set<Int>()  // kept nodes folded into another after the fact
        // Quantisations of the input (or of a step on it) by their output: the kept node's index, the quantisation.
        var inputCodes: [String: (Int, Quantization)] = [:]
        for var node in nodes {
            node.inputs = node.inputs.map(resolve)
            switch node.op {
            case .passThrough:
                alias[node.output] = node.inputs[0]
                continue
            case .pad(let padding):
                pads[node.output] = (node.inputs[0], padding, node.label)
                continue
            case .fakeQuantize(let q):
                // Codes of the input or of a step on it: the steps after it compute on them (the node goes once one
                // does); the last one stays, for the stem conv's input.
                if let nhwc = inputValues[node.inputs[0]] {
                    if let last = steps.indices.last, var codes = steps[last].codes {
                        guard codes.output == nil || codes.output == q else {
                            throw ImportError.unsupported(
                                .node(node.label), problem: "requantises the input's codes to other parameters")
                        }
                        codes.output = q
                        steps[last].codes = codes
                    }
                    inputValues[node.output] = nhwc
                    inputCodes[node.output] = (kept.count, q)
                    byOutput[node.output] = kept.count
                    kept.append(node)
                    continue
                }
                // A quantisation of a zero-padded map (a QDQ pair between a Pad and its pool): the same as the pad
                // of the quantised map, as 0 quantises to the zero point, which stands for 0. It moves before the
                // Pad, which stays pending for the op after it.
                guard let pad = pads[node.inputs[0]] else { break }
                let padded = node.output
                node.inputs[0] = pad.input
                node.output = padded + "#unpadded"
                pads[padded] = (node.output, pad.pads, pad.label)
                byOutput[node.output] = kept.count
                kept.append(node)
                continue
            case .reflectPad(let padding):
                reflectPads[node.output] = (node.inputs[0], padding, node.label)
                continue
            case .depthwiseConv(let conv):
                guard let pad = reflectPads[node.inputs[0]] else {
                    throw ImportError.unsupported(
                        .node(node.label),
                        problem: "a depthwise Conv that is not a blur pool's filter (after a reflection Pad)")
                }
                node.op = .blurPool(try Self.blurPool(conv, pads: pad.pads, node.label), channels: conv.outChannels)
                node.inputs[0] = pad.input
            case .conv(var conv):
                if let pad = pads[node.inputs[0]] {
                    conv.pads = zip(conv.pads, pad.pads).map { $0 + $1 }
                    node.inputs[0] = pad.input
                    node.op = .conv(conv)
                }
            case .pool(var pool):
                if let pad = pads[node.inputs[0]] {
                    guard pool.kind == .max || pool.countIncludePad else {
                        throw ImportError.unsupported(
                            .node(pad.label), problem: "pads the input of an average pool that excludes padding")
                    }
                    pool.pads = zip(pool.pads, pad.pads).map { $0 + $1 }
                    node.inputs[0] = pad.input
                    node.op = .pool(pool)
                }
            case .transpose:
                if let nhwc = inputValues[node.inputs[0]] { inputValues[node.output] = !nhwc }
            case .scale(let constant), .addBias(let constant), .subtract(let constant):
                let operation: QuantizedInputTransform.Step.Operation =
                    switch node.op {
                    case .scale: .multiply
                    case .subtract: .subtract
                    default: .add
                    }
                let isScale = operation == .multiply
                if let nhwc = inputValues[node.inputs[0]] {
                    guard let values = Self.perChannel(constant, nhwc: nhwc) else {
                        throw ImportError.mismatch(
                            .node(node.label), expected: "a per-channel constant on the input",
                            found: "shape \(constant.shape)")
                    }
                    var step = InputStep(
                        label: node.label, scale: isScale ? values : [1],
                        offset: isScale ? [0] : operation == .subtract ? values.map { -$0 } : values)
                    if let (index, q) = inputCodes[node.inputs[0]] {
                        // On codes: the quantisation it reads is its own now. A constant per channel holds its
                        // codes in channel order (every other axis of its shape is 1).
                        guard let codes = constant.quantized else {
                            throw ImportError.unsupported(
                                .node(node.label), problem: "\(node.op.name) of the input's codes by a float constant")
                        }
                        step.codes = StepCodes(operation: operation, input: q, constant: codes)
                        removed.insert(index)
                        alias[node.inputs[0]] = kept[index].inputs[0]
                    }
                    steps.append(step)
                    inputValues[node.output] = nhwc
                    alias[node.output] = resolve(node.inputs[0])
                    continue
                }
                let misplaced = ImportError.unsupported(
                    .node(node.label),
                    problem: "\(node.op.name) of a constant that does not follow a MatMul, a BatchNormalization or the "
                        + "input")
                guard operation != .subtract, var index = byOutput[node.inputs[0]] else { throw misplaced }
                // An Add of the bias after a MatMul whose product is quantised (onnxruntime's QDQ, or its
                // QLinearMatMul then QLinearAdd): the product's quantisation goes onto the linear layer, and the
                // bias is added to its real values.
                if !isScale, case .fakeQuantize(let product) = kept[index].op,
                    let linearIndex = byOutput[kept[index].inputs[0]],
                    case .linear(var linear) = kept[linearIndex].op, linear.bias == nil,
                    constant.count == linear.outFeatures, readers[node.inputs[0], default: 0] == 1
                {
                    linear.productQuantization = product
                    kept[linearIndex].op = .linear(linear)
                    alias[kept[index].output] = kept[index].inputs[0]
                    removed.insert(index)
                    index = linearIndex
                }
                switch kept[index].op {
                case .linear(var linear) where !isScale && linear.bias == nil && constant.count == linear.outFeatures:
                    linear.bias = Tensor(
                        name: constant.name, shape: [constant.count], storedDType: constant.storedDType,
                        values: constant.values)
                    kept[index].op = .linear(linear)
                case .batchNorm(let norm):
                    guard let values = Self.perChannel(constant, nhwc: false),
                        [1, norm.channels].contains(values.count)
                    else {
                        throw ImportError.mismatch(
                            .node(node.label),
                            expected: "one value per channel of \(kept[index].label) (\(norm.channels))",
                            found: "shape \(constant.shape)")
                    }
                    guard readers[node.inputs[0], default: 0] == 1 else {
                        throw ImportError.unsupported(
                            .node(node.label),
                            problem: "follows \(kept[index].label), whose output other nodes read too")
                    }
                    kept[index].op = .batchNorm(isScale ? norm.scaled(by: values) : norm.shifted(by: values))
                    folded += 1
                default:
                    throw misplaced
                }
                alias[node.output] = node.inputs[0]
                continue
            default:
                break
            }
            if node.inputs.contains(where: { pads[$0] != nil }) {
                throw ImportError.unsupported(
                    .node(node.label), problem: "consumes a Pad; only Conv and pooling may follow a Pad")
            }
            if node.inputs.contains(where: { reflectPads[$0] != nil }) {
                throw ImportError.unsupported(
                    .node(node.label), problem: "consumes a reflection Pad; only a blur pool's depthwise Conv may")
            }
            byOutput[node.output] = kept.count
            kept.append(node)
        }
        let remaining = kept.indices.filter { !removed.contains($0) }.map { index in
            var node = kept[index]
            node.inputs = node.inputs.map(resolve)
            return node
        }
        var graph = OpGraph(nodes: remaining, input: input, output: resolve(output))
        graph.inputSteps = steps
        graph.foldedIntoBatchNorms = folded
        return graph
    }
}

extension OpGraph {
    /// A reflection Pad of `pads` and the depthwise `conv` after it as timm's `BlurPool2d`: the pad its side and
    /// stride give on every side, no pads or bias of the conv's own, and the binomial filter in every channel.
    fileprivate static func blurPool(_ conv: Conv2D, pads: [Int], _ label: String) throws -> BlurPool2D {
        let blur = BlurPool2D(kernel: conv.kernel, stride: conv.stride)
        let subject = ImportSubject.node(label)
        guard (2...BlurPool2D.maximumKernel).contains(blur.kernel) else {
            throw ImportError.mismatch(
                subject, expected: "a blur filter of side 2 to \(BlurPool2D.maximumKernel)", found: "\(blur.kernel)")
        }
        guard pads == Array(repeating: blur.padding, count: 4), conv.pads == [0, 0, 0, 0] else {
            throw ImportError.mismatch(
                subject,
                expected: "reflection pads \(blur.padding) on each side before it, none of its own (a blur pool)",
                found: "reflection pads \(pads), conv pads \(conv.pads)")
        }
        let filter = blur.filter
        let values = conv.weight.values
        let exact = values.indices.allSatisfy { abs(values[$0] - filter[$0 % filter.count]) <= 1e-7 }
        guard exact, conv.bias?.values.allSatisfy({ $0 == 0 }) ?? true else {
            throw ImportError.mismatch(
                .weight(of: subject, role: "weight", name: conv.weight.name),
                expected:
                    "the binomial blur filter (\(blur.coefficients.map { "\($0)" }.joined(separator: ", ")) squared) "
                    + "in every channel, no bias",
                found: "other values")
        }
        return blur
    }
}
