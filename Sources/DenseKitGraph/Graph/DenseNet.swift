/// The canonical DenseNet graph every importer produces and every other part consumes.
///
/// Activations are NCHW and conv weights OIHW whatever the source used. The structure is the
/// paper's: a stem, dense blocks of layers (each adding `growth` channels to the concatenation of
/// the block input and all earlier layers' outputs), transitions between blocks, and a head.
/// Canonical layer names: `stem`, `block<b>.layer<i>`, `transition<t>`, `head` (1-based).
public struct DenseNet: Sendable {
    public var source: ModelSource
    public var input: InputSpec
    public var stem: Stem
    public var blocks: [DenseBlock]
    public var transitions: [Transition]
    public var head: Head
    /// Preprocessing the model applies to its input before the stem, when the file holds some.
    public var inputTransform: InputTransform? = nil

    public init(
        source: ModelSource, input: InputSpec, stem: Stem, blocks: [DenseBlock],
        transitions: [Transition], head: Head
    ) {
        self.source = source
        self.input = input
        self.stem = stem
        self.blocks = blocks
        self.transitions = transitions
        self.head = head
    }

    /// Values the model outputs per image (per position, for a head without a global pool): the
    /// last dense layer's out-features, or else the final channels.
    public var classes: Int { head.dense.last?.linear.outFeatures ?? head.norm.channels }
}

/// The first convolution, with its BatchNorm, ReLU and max pool on ImageNet nets.
///
/// CIFAR nets have a bare conv here (the first dense layer's BN-ReLU follows). When an exporter
/// folded the stem BN into the conv, `norm` is nil and `conv.bias` is set.
public struct Stem: Sendable {
    public var conv: Conv2D
    public var norm: BatchNorm?
    public var relu: Bool
    public var pool: Pool2D?

    public init(conv: Conv2D, norm: BatchNorm?, relu: Bool, pool: Pool2D?) {
        self.conv = conv
        self.norm = norm
        self.relu = relu
        self.pool = pool
    }

    /// True when a BatchNorm was folded into the conv (it has a bias and no BN follows).
    public var normFolded: Bool { norm == nil && conv.bias != nil }
    public var outChannels: Int { conv.outChannels }
    package var tensors: [Tensor] { [conv.weight] + (conv.bias.map { [$0] } ?? []) + (norm?.tensors ?? []) }
}

/// A bottleneck: Conv1x1(4k) -> BN -> ReLU, between a dense layer's first BN-ReLU and its 3x3 conv.
public struct Bottleneck: Sendable {
    public var conv: Conv2D
    /// nil when the exporter folded this BN into `conv` (which then has a bias).
    public var norm: BatchNorm?

    public init(conv: Conv2D, norm: BatchNorm?) {
        self.conv = conv
        self.norm = norm
    }

    public var normFolded: Bool { norm == nil && conv.bias != nil }
}

/// One dense layer: BN -> ReLU -> [Conv1x1 -> BN -> ReLU] -> Conv3x3(k) on the concatenated input.
public struct DenseLayer: Sendable {
    public var norm: BatchNorm
    public var bottleneck: Bottleneck?
    /// The conv that produces the layer's `growth` new channels.
    public var conv: Conv2D

    public init(norm: BatchNorm, bottleneck: Bottleneck?, conv: Conv2D) {
        self.norm = norm
        self.bottleneck = bottleneck
        self.conv = conv
    }

    public var inChannels: Int { norm.channels }
    public var growth: Int { conv.outChannels }
    package var tensors: [Tensor] {
        var all = norm.tensors
        if let bottleneckLayer = bottleneck {
            all +=
                [bottleneckLayer.conv.weight] + (bottleneckLayer.conv.bias.map { [$0] } ?? [])
                + (bottleneckLayer.norm?.tensors ?? [])
        }
        return all + [conv.weight] + (conv.bias.map { [$0] } ?? [])
    }
}

/// A dense block: layers whose inputs are the running concatenation of features.
public struct DenseBlock: Sendable {
    public var layers: [DenseLayer]
    public init(layers: [DenseLayer]) { self.layers = layers }

    /// Channels entering the block.
    public var inChannels: Int { layers.first?.inChannels ?? 0 }
    /// Channels leaving the block: input plus every layer's growth.
    public var outChannels: Int { layers.reduce(inChannels) { $0 + $1.growth } }
}

/// A transition between blocks: BN -> ReLU -> Conv1x1 -> AvgPool 2x2 stride 2.
public struct Transition: Sendable {
    public var norm: BatchNorm
    public var conv: Conv2D
    public var pool: Pool2D

    public init(norm: BatchNorm, conv: Conv2D, pool: Pool2D) {
        self.norm = norm
        self.conv = conv
        self.pool = pool
    }

    package var tensors: [Tensor] { norm.tensors + [conv.weight] + (conv.bias.map { [$0] } ?? []) }
}
