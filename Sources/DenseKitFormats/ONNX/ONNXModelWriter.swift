import DenseKitGraph
import Foundation

/// Writes an ONNX model (packed through protobuf-c by `ONNXProtobuf.encode`): a float32 NCHW input
/// `input` with a dynamic batch, torchvision's graph (one Concat per dense layer over everything
/// before it), BatchNormalization nodes (or, with `foldBatchNorm`, the BNs that follow a conv folded
/// into it, as torch's exporter does), and the head as the source has it (a softmax or a sigmoid
/// stays in the graph), ending in `output`. Node and initializer names are canonical and readable:
/// `block3.layer7.conv2.weight`, `transition1.norm.running_var`, `head.classifier.weight`. A model's
/// own input preprocessing (`DenseNet.inputTransform`) is a Mul and an Add on the input. An int8 model is
/// written in onnxruntime's QDQ format (`ONNXGraphBuilder+Quantization.swift`).
public struct ONNXModelWriter: ModelWriter {
    public static let defaultOpset = 17
    public static let opsets = 13...21
    public let format = "onnx"
    public var keepsQuantization: Bool { true }
    public var opset: Int
    public var foldBatchNorm: Bool

    public init(opset: Int = defaultOpset, foldBatchNorm: Bool = false) {
        self.opset = opset
        self.foldBatchNorm = foldBatchNorm
    }

    /// The IR version each opset came with (onnx/helper.py's VERSION_TABLE).
    package static func irVersion(opset: Int) -> Int {
        switch opset {
        case ...14: return 7
        case 15...18: return 8
        case 19, 20: return 9
        default: return 10
        }
    }

    public func prepare(_ net: DenseNet, dtype: DType) throws -> (net: DenseNet, conventions: [Convention]) {
        try require(dtype, in: [.f32])
        guard Self.opsets.contains(opset) else {
            throw UnsupportedTarget(
                format, "opset \(opset) is outside \(Self.opsets.lowerBound) to \(Self.opsets.upperBound) (--opset)")
        }
        var prepared = net
        var conventions: [Convention] = []
        if net.isQuantized {
            guard net.integerArithmetic == .onnxruntime else {
                throw UnsupportedTarget(
                    format,
                    "the model is int8 with \(net.integerArithmetic.framework)'s arithmetic (its int8 BatchNorms, "
                        + "hybrid kernels and rounding), which onnxruntime's QDQ format cannot reproduce; pass "
                        + "--dequantize to write it as floats")
            }
            guard !foldBatchNorm else {
                throw UnsupportedTarget(format, "--fold-bn would change an int8 model's quantised weights")
            }
            conventions.append(
                Convention(
                    .changes, "int8",
                    "written in onnxruntime's QDQ format: QuantizeLinear and DequantizeLinear around float operators, "
                        + "the weights' codes as INT8 (UINT8, INT32) initializers"))
        }
        if foldBatchNorm {
            let (folded, count) = net.foldingBatchNorms()
            prepared = folded
            if count > 0 {
                conventions.append(
                    Convention(
                        .changes, "BatchNorm",
                        """
                        \(count) BatchNorm\(count == 1 ? "" : "s") that follow a conv (stem, bottlenecks) folded \
                        into its weights and bias (--fold-bn), as torch's exporter does
                        """
                    ))
            }
        }
        conventions += FixedLayoutPreparation.layoutChanges(net, to: .nchw, "the ONNX model")
        if net.head.activation == .unknown {
            conventions.append(
                Convention(
                    .drops, "activation",
                    "the source stores none (a weights-only file): the ONNX model outputs the last dense layer's values"
                ))
        }
        prepared.input.layout = .nchw
        prepared.input.name = "input"
        return (prepared, conventions)
    }

    public func encode(_ net: DenseNet, dtype: DType, provenance: Provenance) throws -> Data {
        var graph = ONNXGraphBuilder()
        graph.build(net)
        let input = net.input
        let inputInfo = ONNXValueInfo(
            name: "input", elementType: ONNXGraphBuilder.float, dims: [nil, input.channels, input.height, input.width],
            dimParams: ["batch", nil, input.height == nil ? "height" : nil, input.width == nil ? "width" : nil])
        var outputDims: [Int?] = [nil, net.classes]
        var outputParams: [String?] = ["batch", nil]
        if net.head.pool == nil {
            var size: (Int?, Int?) = (nil, nil)
            if let height = input.height, let width = input.width,
                let sizes = try? FeatureMapSizes(FeatureMapSizes.Geometry(net), height: height, width: width).head
            {
                size = (sizes.height, sizes.width)
            }
            outputDims += [size.0, size.1]
            outputParams += [size.0 == nil ? "out_height" : nil, size.1 == nil ? "out_width" : nil]
        }
        let model = ONNXModel(
            irVersion: Self.irVersion(opset: opset), producerName: "densekit",
            producerVersion: provenance.densekitVersion,
            opsets: ["": opset],
            graph: ONNXGraph(
                nodes: graph.nodes, initializers: graph.initializers, inputs: [inputInfo],
                outputs: [
                    ONNXValueInfo(
                        name: "output", elementType: ONNXGraphBuilder.float, dims: outputDims, dimParams: outputParams)
                ]))
        return try ONNXProtobuf.encode(model)
    }
}

/// Builds the nodes and initializers of a DenseNet's ONNX graph; each node's output is named as the node.
package struct ONNXGraphBuilder {
    package static let float: Int32 = 1
    package static let int64: Int32 = 7
    package var nodes: [ONNXNode] = []
    package var initializers: [ONNXTensorRef] = []
    /// The quantisation of the values a DequantizeLinear gives: each is already rounded to those codes.
    var quantizedValues: [String: Quantization] = [:]

    package mutating func build(_ net: DenseNet) {
        var value = "input"
        if let steps = net.inputTransform?.quantized {
            // On the input's codes: each step a Mul or an Add of its constant's DequantizeLinear between
            // quantisations (onnxruntime runs them as QLinearMul and QLinearAdd).
            value = quantized(value, steps.input, "input.codes")
            for (index, step) in steps.steps.enumerated() {
                let (op, base) =
                    switch step.operation {
                    case .multiply: ("Mul", "input.mul")
                    case .add: ("Add", "input.add")
                    case .subtract: ("Sub", "input.sub")
                    }
                // A second Mul (a Normalization's, after a Rescaling's) is `input.mul2`.
                let earlier = steps.steps[..<index].filter { $0.operation == step.operation }.count
                let name = earlier == 0 ? base : base + "\(earlier + 1)"
                let codes = QuantizedCodes(quantization: step.constantQuantization, codes: step.constants)
                let shape = step.constants.count == 1 ? [] : [1, step.constants.count, 1, 1]
                let constant = dequantized(name + ".constant", codes, shape: shape)
                value = node(op, name, [value, constant])
                value = quantized(value, step.output, name + ".output")
            }
        } else if let transform = net.inputTransform {
            // The model's own preprocessing, per channel: Mul then Add ([1, C, 1, 1] constants).
            let shape = [1, transform.channels, 1, 1]
            let scale = Tensor(name: "input.scale", shape: shape, values: transform.scale)
            let offset = Tensor(name: "input.offset", shape: shape, values: transform.offset)
            value = node("Mul", "input.mul", [value, initializer("input.scale", scale)])
            value = node("Add", "input.add", [value, initializer("input.offset", offset)])
        }
        var features: [String] = []  // the block's input and each dense layer's new channels
        for step in net.steps {
            let name = step.layer.name
            switch step {
            case .stem(let stem):
                value = conv("stem.conv", stem.conv, input: value)
                if let stemNorm = stem.norm {
                    value = norm("stem.norm", stemNorm, input: value)
                    value = relu("stem.relu", value, relu: stem.relu, then: stemNorm.outputQuantization)
                } else {
                    value = relu("stem.relu", value, relu: stem.relu, then: stem.conv.outputQuantization)
                }
                for (index, deep) in stem.deep.enumerated() {
                    let prefix = "stem.deep\(index + 1)"
                    value = conv(prefix + ".conv", deep.conv, input: value)
                    if let deepNorm = deep.norm {
                        value = norm(prefix + ".norm", deepNorm, input: value)
                        value = relu(prefix + ".relu", value, then: deepNorm.outputQuantization)
                    } else {
                        value = relu(prefix + ".relu", value, then: deep.conv.outputQuantization)
                    }
                }
                if let stemPool = stem.pool { value = pool("stem.pool", stemPool, input: value) }
                if let blur = stem.blur {
                    value = blurPool("stem.blur", blur, channels: stem.outChannels, input: value)
                }
            case .denseLayer(let layer, let block, let index, let endsBlock):
                if index == 1 { features = [value] }
                var branch = features.count == 1 ? value : node("Concat", name + ".concat", features, ["axis": .int(1)])
                let normed = norm(name + ".norm1", layer.norm, input: branch)
                branch = relu(name + ".relu1", normed, then: layer.norm.outputQuantization)
                if let bottleneck = layer.bottleneck {
                    branch = conv(name + ".conv1", bottleneck.conv, input: branch)
                    if let bottleneckNorm = bottleneck.norm {
                        branch = norm(name + ".norm2", bottleneckNorm, input: branch)
                        branch = relu(name + ".relu2", branch, then: bottleneckNorm.outputQuantization)
                    } else {
                        branch = relu(name + ".relu2", branch, then: bottleneck.conv.outputQuantization)
                    }
                    branch = conv(name + ".conv2", layer.conv, input: branch)
                    branch = quantized(branch, layer.conv.outputQuantization, name + ".conv2.output")
                } else {
                    branch = conv(name + ".conv1", layer.conv, input: branch)
                    branch = quantized(branch, layer.conv.outputQuantization, name + ".conv1.output")
                }
                features.append(branch)
                if endsBlock {
                    value = node("Concat", "\(CanonicalLayer.block(block)).concat", features, ["axis": .int(1)])
                }
            case .transition(let transition, _):
                let normed = norm(name + ".norm", transition.norm, input: value)
                let activated = relu(name + ".relu", normed, then: transition.norm.outputQuantization)
                let convolved = quantized(
                    conv(name + ".conv", transition.conv, input: activated), transition.conv.outputQuantization,
                    name + ".conv.output")
                value = pool(name + ".pool", transition.pool, input: convolved)
            case .head(let head):
                buildHead(head, input: value)
            }
        }
    }

    /// The head's nodes: BN, ReLU, then the global pool, flatten and dense layers when it has them.
    private mutating func buildHead(_ head: Head, input: String) {
        let normed = norm("head.norm", head.norm, input: input)
        var value = relu("head.relu", normed, then: head.norm.outputQuantization, last: head.pool == nil)
        guard let pool = head.pool else { return }
        value = node(pool == .average ? "GlobalAveragePool" : "GlobalMaxPool", "head.pool", [value])
        value = node("Flatten", "head.flatten", [value], ["axis": .int(1)], last: head.dense.isEmpty)
        for (i, (name, d)) in zip(CanonicalLayout.denseNames(count: head.dense.count), head.dense).enumerated() {
            let last = i == head.dense.count - 1
            let activation: (op: String, attributes: [String: ONNXAttribute])? =
                switch d.activation {
                case .linear, .unknown: nil
                case .relu: ("Relu", [:])
                case .sigmoid: ("Sigmoid", [:])
                case .tanh: ("Tanh", [:])
                case .softmax: ("Softmax", ["axis": .int(1)])
                }
            // The model's output quantised after the last activation (a QLinearSoftmax's codes).
            let outputQuantized = last && head.outputQuantization != nil
            // Whether the linear layer's result (before any activation) is the graph's output, and whether the
            // node that makes it is (no quantisation of it follows).
            let ends = last && activation == nil && !outputQuantized
            let endsUnquantized = ends && d.linear.outputQuantization == nil
            value = quantized(value, d.linear.inputQuantization, name + ".input")
            let weight = initializer(name + ".weight", d.linear.weight)
            let bias = d.linear.bias.map { initializer(name + ".bias", $0) }
            if let product = d.linear.productQuantization {
                // The product quantised before the bias is added (onnxruntime's MatMul then Add, each quantised).
                value = node("Gemm", name, [value, weight], ["transB": .int(1)])
                value = quantized(value, product, name + ".product", last: endsUnquantized && bias == nil)
                if let bias { value = node("Add", name + ".bias_add", [value, bias], last: endsUnquantized) }
            } else {
                value = node(
                    "Gemm", name, [value, weight] + (bias.map { [$0] } ?? []), ["transB": .int(1)],
                    last: endsUnquantized)
            }
            value = quantized(value, d.linear.outputQuantization, name + ".output", last: ends)
            if let activation {
                value = node(
                    activation.op, name + "." + activation.op.lowercased(), [value], activation.attributes,
                    last: last && !outputQuantized)
            }
            if outputQuantized { value = quantized(value, head.outputQuantization, "head.output", last: true) }
        }
    }

    /// Appends a node; `last`: its output is the graph's `output`.
    mutating func node(
        _ op: String, _ name: String, _ inputs: [String], _ attributes: [String: ONNXAttribute] = [:],
        last: Bool = false
    ) -> String {
        let output = last ? "output" : name
        nodes.append(
            ONNXNode(name: name, opType: op, domain: "", inputs: inputs, outputs: [output], attributes: attributes))
        return output
    }

    mutating func initializer(_ name: String, _ tensor: Tensor) -> String {
        if let quantized = tensor.quantized { return dequantized(name, quantized, shape: tensor.shape) }
        initializers.append(
            ONNXTensorRef(
                name: name, dims: tensor.shape.map(Int64.init), dataType: Self.float,
                payload: .raw(StoredFloat.f32.encode(tensor))))
        return name
    }

    private mutating func conv(_ name: String, _ convolution: Conv2D, input: String) -> String {
        let input = quantized(input, convolution.inputQuantization, name + ".input")
        let inputs =
            [input, initializer(name + ".weight", convolution.weight)]
            + (convolution.bias.map { [initializer(name + ".bias", $0)] } ?? [])
        return node(
            "Conv", name, inputs,
            [
                "kernel_shape": .ints([Int64(convolution.kernel), Int64(convolution.weight.shape[3])]),
                "strides": .ints([Int64(convolution.stride), Int64(convolution.stride)]),
                "pads": .ints(convolution.pads.map(Int64.init)), "dilations": .ints([1, 1]), "group": .int(1),
            ])
    }

    /// timm's `BlurPool2d`: a reflection Pad, then the binomial filter as a depthwise Conv.
    private mutating func blurPool(_ name: String, _ blur: BlurPool2D, channels: Int, input: String) -> String {
        let side = Int64(blur.padding)
        let pads = ONNXTensorRef(
            name: name + ".pads", dims: [8], dataType: Self.int64,
            payload: .int64s([0, 0, side, side, 0, 0, side, side]))
        initializers.append(pads)
        let padded = node("Pad", name + ".pad", [input, pads.name], ["mode": .string("reflect")])
        let filter = blur.filter
        let weight = Tensor(
            name: name + ".weight", shape: [channels, 1, blur.kernel, blur.kernel],
            values: Array((0..<channels).map { _ in filter }.joined()))
        return node(
            "Conv", name, [padded, initializer(weight.name, weight)],
            [
                "kernel_shape": .ints([Int64(blur.kernel), Int64(blur.kernel)]),
                "strides": .ints([Int64(blur.stride), Int64(blur.stride)]), "pads": .ints([0, 0, 0, 0]),
                "dilations": .ints([1, 1]), "group": .int(Int64(channels)),
            ])
    }

    private mutating func norm(_ name: String, _ batchNorm: BatchNorm, input: String) -> String {
        let input = quantized(input, batchNorm.inputQuantization, name + ".input")
        let inputs = zip(BatchNorm.torchNames, batchNorm.tensors).map { initializer("\(name).\($0)", $1) }
        return node("BatchNormalization", name, [input] + inputs, ["epsilon": .float(batchNorm.epsilon)])
    }

    private mutating func pool(_ name: String, _ pooling: Pool2D, input: String) -> String {
        var attributes: [String: ONNXAttribute] = [
            "kernel_shape": .ints([Int64(pooling.kernel), Int64(pooling.kernel)]),
            "strides": .ints([Int64(pooling.stride), Int64(pooling.stride)]),
            "pads": .ints(pooling.pads.map(Int64.init)),
        ]
        if pooling.kind == .average { attributes["count_include_pad"] = .int(pooling.countIncludePad ? 1 : 0) }
        let input = quantized(input, pooling.inputQuantization, name + ".input")
        let pooled = node(pooling.kind == .max ? "MaxPool" : "AveragePool", name, [input], attributes)
        // A max of codes keeps them (onnxruntime pools the codes); a QuantizeLinear after it repeats them.
        if pooling.kind == .max, let q = quantizedValues[input], pooling.outputQuantization ?? q == q {
            quantizedValues[pooled] = q
            return pooled
        }
        return quantized(pooled, pooling.outputQuantization, name + ".output")
    }
}
