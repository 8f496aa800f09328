/// The one gate every model passes, whatever file it came from, before the verifier, the executor,
/// diff or convert sees it. The importers throw at the first thing that makes a file unreadable; this
/// checks the canonical graph they built as a whole, so that a file that parses but lies (a stride
/// of 0, a bias shorter than its channels, an epsilon of -1, a config that contradicts its weights)
/// is refused here, naming the layer or tensor with what was expected and what was found.
extension DenseNet {
    /// Bounds on what a file may declare. Generous for any DenseNet, small enough that no size
    /// derived from them overflows.
    public enum Limits {
        /// Input height and width.
        public static let inputSide = 16_384
        /// Conv and pool strides.
        public static let stride = 16
        /// Conv and pool kernel sides.
        public static let kernel = 31
        /// Channels of any layer.
        public static let channels = 1 << 16
        /// A declared fixed batch.
        public static let batch = 1 << 20
    }

    /// Throws the first inconsistency, naming the canonical layer (`block2.layer3.conv`) or tensor.
    public func validate() throws {
        // The stem's weight first: the input is checked against the channels it reads.
        try validate(stem.conv.weight, .layer(.stem, part: "conv"), rank: 4)
        try validateInput()
        try validate(stem.conv, .layer(.stem, part: "conv"), inChannels: input.channels)
        if let stemNorm = stem.norm {
            try validate(stemNorm, .layer(.stem, part: "norm"), channels: stem.conv.outChannels)
        }
        var stemWidth = stem.conv.outChannels
        for (index, deep) in stem.deep.enumerated() {
            let part = "deep\(index + 1)"
            try validate(deep.conv, .layer(.stem, part: "\(part).conv"), inChannels: stemWidth, sameSize: true)
            if let norm = deep.norm {
                try validate(norm, .layer(.stem, part: "\(part).norm"), channels: deep.conv.outChannels)
            }
            stemWidth = deep.conv.outChannels
        }
        if let stemPool = stem.pool { try validate(stemPool, .layer(.stem, part: "pool")) }
        if let blur = stem.blur {
            guard (2...BlurPool2D.maximumKernel).contains(blur.kernel), (1...Limits.stride).contains(blur.stride) else {
                throw ImportError.mismatch(
                    .layer(.stem, part: "blur"),
                    expected: "a blur of side 2 to \(BlurPool2D.maximumKernel), stride 1 to \(Limits.stride)",
                    found: "side \(blur.kernel), stride \(blur.stride)")
            }
        }
        guard !blocks.isEmpty else {
            throw ImportError.mismatch(.part("blocks"), expected: "at least one dense block", found: "none")
        }
        guard transitions.count == blocks.count - 1 else {
            throw ImportError.mismatch(
                .part("transitions"), expected: "\(blocks.count - 1) (one between each pair of blocks)",
                found: "\(transitions.count)")
        }
        if let empty = blocks.firstIndex(where: \.layers.isEmpty) {
            throw ImportError.mismatch(
                .layer(.block(empty + 1)), expected: "at least one dense layer", found: "none")
        }
        var width = stem.outChannels
        for step in steps {
            switch step {
            case .denseLayer(let layer, _, _, _):
                try validate(layer.norm, .layer(step.layer, part: "norm"), channels: width)
                var convInput = width
                if let bottleneck = layer.bottleneck {
                    try validate(
                        bottleneck.conv, .layer(step.layer, part: "bottleneck.conv"), inChannels: width, sameSize: true)
                    if let bottleneckNorm = bottleneck.norm {
                        try validate(
                            bottleneckNorm, .layer(step.layer, part: "bottleneck.norm"),
                            channels: bottleneck.conv.outChannels)
                    }
                    convInput = bottleneck.conv.outChannels
                }
                try validate(layer.conv, .layer(step.layer, part: "conv"), inChannels: convInput, sameSize: true)
                width += layer.conv.outChannels
                guard width <= Limits.channels else {
                    throw ImportError.mismatch(
                        .layer(step.layer), expected: "at most \(Limits.channels) concatenated channels",
                        found: "\(width)")
                }
            case .transition(let transition, _):
                try validate(transition.norm, .layer(step.layer, part: "norm"), channels: width)
                try validate(transition.conv, .layer(step.layer, part: "conv"), inChannels: width)
                try validate(transition.pool, .layer(step.layer, part: "pool"))
                width = transition.conv.outChannels
            case .stem, .head:
                break
            }
        }
        try validate(head.norm, .layer(.head, part: "norm"), channels: width)
        try validateHead(features: width)
        try validateQuantization()
        if let mapHeight = input.height, let mapWidth = input.width {
            _ = try FeatureMapSizes(self, height: mapHeight, width: mapWidth)
        }
    }

    private func validateInput() throws {
        let limit = Limits.inputSide
        for (axis, value) in [("height", input.height), ("width", input.width)] {
            if let value, !(1...limit).contains(value) {
                throw ImportError.mismatch(
                    .input(input.name), expected: "\(axis) from 1 to \(limit)", found: "\(value)")
            }
        }
        if let batch = input.batch, !(1...Limits.batch).contains(batch) {
            throw ImportError.mismatch(
                .input(input.name), expected: "batch from 1 to \(Limits.batch)", found: "\(batch)")
        }
        guard (1...Limits.channels).contains(input.channels) else {
            throw ImportError.mismatch(
                .input(input.name), expected: "1 to \(Limits.channels) channels", found: "\(input.channels)")
        }
        guard input.channels == stem.conv.inChannels else {
            throw ImportError.mismatch(
                .input(input.name), expected: "\(stem.conv.inChannels) channels (what the stem conv reads)",
                found: "\(input.channels)")
        }
        if let inputTransform {
            let subject = ImportSubject.part("input transform (\(inputTransform.origin.joined(separator: ", ")))")
            guard inputTransform.scale.count == input.channels, inputTransform.offset.count == input.channels else {
                throw ImportError.mismatch(
                    subject, expected: "a scale and an offset per input channel (\(input.channels))",
                    found: "\(inputTransform.scale.count) and \(inputTransform.offset.count)")
            }
            if let bad = (inputTransform.scale + inputTransform.offset).first(where: { !$0.isFinite }) {
                throw ImportError.mismatch(subject, expected: "finite scales and offsets", found: "\(bad)")
            }
        }
    }

    /// A tensor of `rank` dims, each at least 1, holding exactly the values its shape says.
    private func validate(_ tensor: Tensor, _ layer: ImportSubject, rank: Int) throws {
        // Made only for an error: every tensor of a model passes here.
        func subject() -> ImportSubject { .weight(of: layer, role: "tensor", name: tensor.name) }
        guard tensor.shape.count == rank else {
            throw ImportError.mismatch(subject(), expected: "\(rank) dims", found: "shape \(tensor.shape)")
        }
        guard tensor.shape.allSatisfy({ $0 >= 1 && $0 <= Int(Int32.max) }) else {
            throw ImportError.mismatch(subject(), expected: "dims from 1 to 2^31-1", found: "shape \(tensor.shape)")
        }
        guard let product = tensor.shapeProduct, product == tensor.count else {
            throw ImportError.mismatch(
                subject(),
                expected:
                    "\(tensor.shapeProduct.map(String.init) ?? "an overflow-free number of") values for shape "
                    + "\(tensor.shape)",
                found: "\(tensor.count)")
        }
    }

    /// A per-channel vector of exactly `channels` values.
    private func validate(_ tensor: Tensor, _ layer: ImportSubject, channels: Int, role: String) throws {
        try validate(tensor, layer, rank: 1)
        guard tensor.count == channels else {
            throw ImportError.mismatch(
                .weight(of: layer, role: role, name: tensor.name), expected: "\(channels) values (one per channel)",
                found: "\(tensor.count)")
        }
    }

    private func validate(_ conv: Conv2D, _ layer: ImportSubject, inChannels: Int, sameSize: Bool = false) throws {
        try validate(conv.weight, layer, rank: 4)
        let shape = conv.weight.shape
        guard shape[0] <= Limits.channels else {
            throw ImportError.mismatch(
                layer, expected: "at most \(Limits.channels) output channels", found: "\(shape[0])")
        }
        guard shape[1] == inChannels else {
            throw ImportError.mismatch(
                .weight(of: layer, role: "weight", name: conv.weight.name), expected: "\(inChannels) input channels",
                found: "\(shape[1])")
        }
        guard shape[2] == shape[3], shape[2] <= Limits.kernel else {
            throw ImportError.mismatch(
                .weight(of: layer, role: "weight", name: conv.weight.name),
                expected: "a square kernel of side 1 to \(Limits.kernel)",
                found: "\(shape[2])x\(shape[3])")
        }
        if let bias = conv.bias { try validate(bias, layer, channels: shape[0], role: "bias") }
        guard (1...Limits.stride).contains(conv.stride) else {
            throw ImportError.mismatch(layer, expected: "stride 1 to \(Limits.stride)", found: "\(conv.stride)")
        }
        try validatePads(conv.pads, kernel: shape[2], layer)
        if sameSize {
            // A dense layer's output is concatenated with its input: its convs must keep the map size.
            guard conv.stride == 1, conv.pads[0] + conv.pads[2] == shape[2] - 1,
                conv.pads[1] + conv.pads[3] == shape[2] - 1
            else {
                throw ImportError.mismatch(
                    layer,
                    expected:
                        """
                        stride 1 and pads summing to \(shape[2] - 1) per axis (a size-preserving conv, for the \
                        concatenation)
                        """,
                    found: "stride \(conv.stride), pads \(conv.pads)")
            }
        }
    }

    private func validatePads(_ pads: [Int], kernel: Int, _ layer: ImportSubject) throws {
        guard pads.count == 4, pads.allSatisfy({ $0 >= 0 && $0 < kernel }) else {
            throw ImportError.mismatch(
                layer, expected: "4 pads from 0 to \(kernel - 1) (below the kernel \(kernel))", found: "\(pads)")
        }
    }

    private func validate(_ norm: BatchNorm, _ layer: ImportSubject, channels: Int) throws {
        for (t, role) in zip(norm.tensors, ["gamma", "beta", "mean", "variance"]) {
            try validate(t, layer, channels: channels, role: role)
        }
        guard norm.epsilon.isFinite, norm.epsilon > 0 else {
            throw ImportError.mismatch(layer, expected: "a finite epsilon > 0", found: "\(norm.epsilon)")
        }
    }

    private func validate(_ pool: Pool2D, _ layer: ImportSubject) throws {
        guard (1...Limits.kernel).contains(pool.kernel) else {
            throw ImportError.mismatch(layer, expected: "pool size 1 to \(Limits.kernel)", found: "\(pool.kernel)")
        }
        guard (1...Limits.stride).contains(pool.stride) else {
            throw ImportError.mismatch(layer, expected: "pool stride 1 to \(Limits.stride)", found: "\(pool.stride)")
        }
        try validatePads(pool.pads, kernel: pool.kernel, layer)
    }

    /// Dense layers only after a global pool, each reading what the one before it outputs.
    private func validateHead(features: Int) throws {
        guard head.pool != nil || head.dense.isEmpty else {
            throw ImportError.mismatch(.layer(.head), expected: "a global pool before the dense layers", found: "none")
        }
        var width = features
        var what = "the final channels"
        for (i, d) in head.dense.enumerated() {
            let layer: CanonicalLayer = i == head.dense.count - 1 ? .head : .headDense(i + 1)
            try validate(d.linear, .layer(layer), inFeatures: width, what: what)
            width = d.linear.outFeatures
            what = "the previous dense layer's outputs"
        }
    }

    private func validate(_ linear: Linear, _ layer: ImportSubject, inFeatures: Int, what: String) throws {
        try validate(linear.weight, layer, rank: 2)
        guard linear.weight.shape[1] == inFeatures else {
            throw ImportError.mismatch(
                .weight(of: layer, role: "weight", name: linear.weight.name),
                expected: "\(inFeatures) in-features (\(what))",
                found: "\(linear.weight.shape[1])")
        }
        guard linear.outFeatures <= Limits.channels else {
            throw ImportError.mismatch(
                layer, expected: "at most \(Limits.channels) outputs", found: "\(linear.outFeatures)")
        }
        if let bias = linear.bias { try validate(bias, layer, channels: linear.outFeatures, role: "bias") }
    }
}
