import DenseKitGraph
import Foundation

/// Builds the tensors, operators and buffers of a DenseNet as TensorFlow Lite's converter lays one out from a
/// Keras model: NHWC activations (batch 1, -1 in each shape signature), OHWI filters, every conv with a bias (a
/// zero one where the model has none), a BatchNorm that follows a conv already folded into it (the writer's
/// `prepare`), the others a MUL and an ADD by per-channel constants with the ReLU fused into the ADD, each dense
/// block's concatenations one new layer at a time, zero padding as a PAD before a VALID conv or pool (SAME where
/// it is the same thing), the global pool a MEAN (or REDUCE_MAX) over H and W, and the head's activation as its
/// own operator; timm's blur pool a MIRROR_PAD and a DEPTHWISE_CONV_2D. With float16 weights every float constant
/// is stored as FLOAT16 behind a DEQUANTIZE (all of them first), as the converter's float16 quantisation does.
/// Tensors are named canonically (`block2.layer3.conv1.weight`, `transition1.norm.scale`); the input is `input`,
/// the output `output`.
struct TFLiteGraphBuilder {
    /// tflite::BuiltinOperator codes the writer uses.
    enum Builtin: Int {
        case add = 0
        case averagePool = 1
        case concatenation = 2
        case conv = 3
        case depthwiseConv = 4
        case dequantize = 6
        case fullyConnected = 9
        case logistic = 14
        case maxPool = 17
        case mul = 18
        case relu = 19
        case softmax = 25
        case tanh = 28
        case pad = 34
        case mean = 40
        case reduceMax = 82
        case mirrorPad = 100
    }

    /// An NHWC activation.
    struct Map {
        var tensor: Int
        var height: Int, width: Int, channels: Int
    }

    let halfWeights: Bool
    private(set) var tensors: [TFLiteFile.Tensor] = []
    /// The DEQUANTIZE operators of float16 constants, which come first (as the converter orders them).
    private var dequantizations: [TFLiteFile.Operator] = []
    private var layers: [TFLiteFile.Operator] = []
    /// Buffer 0 is TensorFlow Lite's empty sentinel.
    private(set) var buffers: [Data] = [Data()]
    private var zeroBiases: [Int: Int] = [:]

    init(halfWeights: Bool) { self.halfWeights = halfWeights }

    /// Every operator, in order.
    var operators: [TFLiteFile.Operator] {
        (dequantizations + layers).enumerated().map { index, op in
            var op = op
            op.index = index
            return op
        }
    }

    /// The whole model; the graph's input and output tensors.
    mutating func build(_ net: DenseNet, height: Int, width: Int) -> (input: Int, output: Int) {
        let input = activation("input", [1, height, width, net.input.channels])
        var map = Map(tensor: input, height: height, width: width, channels: net.input.channels)
        if let transform = net.inputTransform {
            // The model's own preprocessing, per channel: MUL then ADD.
            let count = transform.channels
            let scale = constant("input.scale", [count], transform.scale)
            map = elementwise(.mul, "input.mul", map, scale)
            map = elementwise(.add, "input.add", map, constant("input.offset", [count], transform.offset))
        }
        var output = map.tensor
        for step in net.steps {
            let name = step.layer.name
            switch step {
            case .stem(let stem):
                map = conv("stem.conv", stem.conv, input: map, relu: stem.relu && stem.norm == nil)
                if let norm = stem.norm { map = batchNorm("stem.norm", norm, input: map, relu: stem.relu) }
                for (index, deep) in stem.deep.enumerated() {
                    let prefix = "stem.deep\(index + 1)"
                    map = conv(prefix + ".conv", deep.conv, input: map, relu: deep.norm == nil)
                    if let norm = deep.norm { map = batchNorm(prefix + ".norm", norm, input: map, relu: true) }
                }
                if let pool = stem.pool { map = self.pool("stem.pool", pool, input: map) }
                if let blur = stem.blur { map = blurPool("stem.blur", blur, input: map) }
            case .denseLayer(let layer, let block, _, let endsBlock):
                var branch = batchNorm(name + ".norm1", layer.norm, input: map, relu: true)
                if let bottleneck = layer.bottleneck {
                    branch = conv(name + ".conv1", bottleneck.conv, input: branch, relu: bottleneck.norm == nil)
                    if let norm = bottleneck.norm {
                        branch = batchNorm(name + ".norm2", norm, input: branch, relu: true)
                    }
                    branch = conv(name + ".conv2", layer.conv, input: branch, relu: false)
                } else {
                    branch = conv(name + ".conv1", layer.conv, input: branch, relu: false)
                }
                // Keras's concatenation: everything so far, then the new channels.
                let concatName = endsBlock ? "\(CanonicalLayer.block(block)).concat" : name + ".concat"
                let out = activation(concatName, [1, map.height, map.width, map.channels + branch.channels])
                append(.concatenation, inputs: [map.tensor, branch.tensor], output: out) { $0.axis = 3 }
                map.tensor = out
                map.channels += branch.channels
            case .transition(let transition, _):
                let normed = batchNorm(name + ".norm", transition.norm, input: map, relu: true)
                map = pool(name + ".pool", transition.pool, input: conv(name + ".conv", transition.conv, input: normed))
            case .head(let head):
                output = buildHead(head, input: map)
            }
        }
        return (input, output)
    }

    /// BN and ReLU, then the global pool and the dense layers when the head has them; the last tensor.
    private mutating func buildHead(_ head: Head, input: Map) -> Int {
        let map = batchNorm("head.norm", head.norm, input: input, relu: true, output: head.pool == nil)
        guard let pool = head.pool else { return map.tensor }
        let axes = integerConstant("head.pool.axes", [2], [1, 2])
        var features = map.channels
        var value = activation("head.pool", [1, features], last: head.dense.isEmpty)
        append(pool == .average ? .mean : .reduceMax, inputs: [map.tensor, axes], output: value) { $0.keepDims = 0 }
        for (i, (name, d)) in zip(CanonicalLayout.denseNames(count: head.dense.count), head.dense).enumerated() {
            let last = i == head.dense.count - 1
            let separate: Builtin? =
                switch d.activation {
                case .sigmoid: .logistic
                case .tanh: .tanh
                case .softmax: .softmax
                case .linear, .unknown, .relu: nil
                }
            features = d.linear.outFeatures
            let weights = constant(name + ".weight", d.linear.weight.shape, d.linear.weight.values)
            let bias = d.linear.bias.map { constant(name + ".bias", [features], $0.values) } ?? zeroBias(features)
            let out = activation(name, [1, features], last: last && separate == nil)
            append(.fullyConnected, inputs: [value, weights, bias], output: out) {
                $0.activation = d.activation == .relu ? 1 : 0
            }
            value = out
            if let separate {
                let activated = activation(name + "." + d.activation.rawValue, [1, features], last: last)
                append(separate, inputs: [value], output: activated) { $0.beta = 1 }
                value = activated
            }
        }
        return value
    }

    // MARK: layers

    /// A conv (PAD first unless its padding is none or TFLite's SAME), its bias or a zero one, ReLU fused.
    private mutating func conv(_ name: String, _ convolution: Conv2D, input: Map, relu: Bool = false) -> Map {
        let (kernelHeight, kernelWidth) = (convolution.weight.shape[2], convolution.weight.shape[3])
        let (padded, same) = padding(name, convolution.pads, kernel: kernelHeight, stride: convolution.stride, input)
        let filter = constant(
            name + ".weight", [convolution.outChannels, kernelHeight, kernelWidth, convolution.inChannels],
            convolution.weight.permuted(.oihw, to: .ohwi).values)
        let bias =
            convolution.bias.map { constant(name + ".bias", [convolution.outChannels], $0.values) }
            ?? zeroBias(convolution.outChannels)
        let (height, width) = Self.outputSize(
            padded, kernel: kernelHeight, stride: convolution.stride, pads: same ? convolution.pads : nil)
        let out = activation(name, [1, height, width, convolution.outChannels])
        append(.conv, inputs: [padded.tensor, filter, bias], output: out) {
            $0.padding = same ? 0 : 1
            $0.strideW = Int32(convolution.stride)
            $0.strideH = Int32(convolution.stride)
            $0.dilationW = 1
            $0.dilationH = 1
            $0.activation = relu ? 1 : 0
        }
        return Map(tensor: out, height: height, width: width, channels: convolution.outChannels)
    }

    /// A pool; its padding as for a conv (zeros before a max pool: `prepare` allows it only after a ReLU).
    private mutating func pool(_ name: String, _ pooling: Pool2D, input: Map) -> Map {
        let (padded, same) = padding(name, pooling.pads, kernel: pooling.kernel, stride: pooling.stride, input)
        let (height, width) = Self.outputSize(
            padded, kernel: pooling.kernel, stride: pooling.stride, pads: same ? pooling.pads : nil)
        let out = activation(name, [1, height, width, input.channels])
        append(pooling.kind == .max ? .maxPool : .averagePool, inputs: [padded.tensor], output: out) {
            $0.padding = same ? 0 : 1
            $0.strideW = Int32(pooling.stride)
            $0.strideH = Int32(pooling.stride)
            $0.filterW = Int32(pooling.kernel)
            $0.filterH = Int32(pooling.kernel)
        }
        return Map(tensor: out, height: height, width: width, channels: input.channels)
    }

    /// timm's `BlurPool2d`: a MIRROR_PAD (REFLECT), then the binomial filter as a DEPTHWISE_CONV_2D ([1, k, k, C]).
    private mutating func blurPool(_ name: String, _ blur: BlurPool2D, input: Map) -> Map {
        let padded = pad(.mirrorPad, name, Array(repeating: blur.padding, count: 4), input)
        let (k, channels) = (blur.kernel, input.channels)
        let filter = blur.filter.flatMap { [Float](repeating: $0, count: channels) }
        let weights = constant(name + ".weight", [1, k, k, channels], filter)
        let (height, width) = Self.outputSize(padded, kernel: k, stride: blur.stride, pads: nil)
        let out = activation(name, [1, height, width, channels])
        append(.depthwiseConv, inputs: [padded.tensor, weights, zeroBias(channels)], output: out) {
            $0.padding = 1
            $0.strideW = Int32(blur.stride)
            $0.strideH = Int32(blur.stride)
            $0.depthMultiplier = 1
            $0.dilationW = 1
            $0.dilationH = 1
        }
        return Map(tensor: out, height: height, width: width, channels: channels)
    }

    /// Whether `pads` (top, left, bottom, right) is TFLite's SAME (stride 1, an odd window, half of it on each
    /// side); otherwise the input after a PAD of them (none when they are zero), for a VALID operator.
    private mutating func padding(_ name: String, _ pads: [Int], kernel: Int, stride: Int, _ input: Map) -> (
        Map, same: Bool
    ) {
        if pads.allSatisfy({ $0 == 0 }) { return (input, false) }
        if stride == 1, kernel % 2 == 1, pads.allSatisfy({ $0 == kernel / 2 }) { return (input, true) }
        return (pad(.pad, name, pads, input), false)
    }

    /// A PAD (zeros) or MIRROR_PAD (REFLECT) of `pads` (top, left, bottom, right) on H and W.
    private mutating func pad(_ builtin: Builtin, _ name: String, _ pads: [Int], _ input: Map) -> Map {
        let paddings = integerConstant(
            name + ".paddings", [4, 2], [0, 0, pads[0], pads[2], pads[1], pads[3], 0, 0].map { Int32($0) })
        let height = input.height + pads[0] + pads[2]
        let width = input.width + pads[1] + pads[3]
        let out = activation(name + ".pad", [1, height, width, input.channels])
        append(builtin, inputs: [input.tensor, paddings], output: out) { $0.mirrorMode = 0 }
        return Map(tensor: out, height: height, width: width, channels: input.channels)
    }

    /// The map a window makes of `input`: with TFLite's SAME, `pads` are its (symmetric) padding; VALID: nil.
    private static func outputSize(_ input: Map, kernel: Int, stride: Int, pads: [Int]?) -> (Int, Int) {
        FeatureMapSizes.Geometry.Window(kernel: kernel, stride: stride, pads: pads ?? [0, 0, 0, 0])
            .outputSize(input.height, input.width)
    }

    /// A BatchNorm as MUL and ADD by its per-channel scale and shift, the ReLU fused into the ADD.
    private mutating func batchNorm(_ name: String, _ norm: BatchNorm, input: Map, relu: Bool, output: Bool = false)
        -> Map
    {
        let (scale, shift) = norm.affine()
        let scaled = elementwise(.mul, name + ".mul", input, constant(name + ".scale", [norm.channels], scale))
        return elementwise(
            .add, name, scaled, constant(name + ".shift", [norm.channels], shift), relu: relu, last: output)
    }

    private mutating func elementwise(
        _ builtin: Builtin, _ name: String, _ input: Map, _ constant: Int, relu: Bool = false, last: Bool = false
    ) -> Map {
        let out = activation(name, [1, input.height, input.width, input.channels], last: last)
        append(builtin, inputs: [input.tensor, constant], output: out) { $0.activation = relu ? 1 : 0 }
        return Map(tensor: out, height: input.height, width: input.width, channels: input.channels)
    }

    // MARK: tensors and operators

    private mutating func append(
        _ builtin: Builtin, inputs: [Int], output: Int, options: (inout TFLiteFile.Options) -> Void
    ) {
        layers.append(makeOperator(builtin, inputs: inputs, output: output, options: options))
    }

    private func makeOperator(
        _ builtin: Builtin, inputs: [Int], output: Int, options: (inout TFLiteFile.Options) -> Void
    ) -> TFLiteFile.Operator {
        var fields = TFLiteFile.Options()
        options(&fields)
        return TFLiteFile.Operator(
            index: 0, builtin: builtin.rawValue, inputs: inputs, outputs: [output], options: fields,
            label: tensors[output].name)
    }

    /// An activation tensor (no buffer), the batch -1 in its signature; `last`: named `output`.
    private mutating func activation(_ name: String, _ shape: [Int], last: Bool = false) -> Int {
        tensors.append(
            TFLiteFile.Tensor(
                index: tensors.count, name: last ? "output" : name, shape: shape,
                shapeSignature: [-1] + shape.dropFirst(), type: TFLiteFile.float32, buffer: 0))
        return tensors.count - 1
    }

    private mutating func stored(_ name: String, _ shape: [Int], type: Int, _ bytes: Data) -> Int {
        buffers.append(bytes)
        tensors.append(
            TFLiteFile.Tensor(index: tensors.count, name: name, shape: shape, type: type, buffer: buffers.count - 1))
        return tensors.count - 1
    }

    /// A float constant: float32, or with half weights float16 behind a DEQUANTIZE to float32.
    private mutating func constant(_ name: String, _ shape: [Int], _ values: [Float]) -> Int {
        let tensor = Tensor(name: name, shape: shape, values: values)
        guard halfWeights else { return stored(name, shape, type: TFLiteFile.float32, StoredFloat.f32.encode(tensor)) }
        let half = stored(name + ".f16", shape, type: TFLiteFile.float16, StoredFloat.f16.encode(tensor))
        let out = activation(name, shape)
        tensors[out].shapeSignature = []
        dequantizations.append(makeOperator(.dequantize, inputs: [half], output: out) { _ in })
        return out
    }

    private mutating func integerConstant(_ name: String, _ shape: [Int], _ values: [Int32]) -> Int {
        var bytes = Data(capacity: values.count * 4)
        for value in values { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        return stored(name, shape, type: TFLiteFile.int32, bytes)
    }

    /// One zero bias per channel count, shared as the converter shares its `arith.constant`.
    private mutating func zeroBias(_ count: Int) -> Int {
        if let existing = zeroBiases[count] { return existing }
        let tensor = constant("zero_bias.\(count)", [count], [Float](repeating: 0, count: count))
        zeroBiases[count] = tensor
        return tensor
    }
}
