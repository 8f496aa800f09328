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
    /// Whose integer arithmetic the model's quantisation follows (what `isQuantized` says; ignored otherwise).
    public var integerArithmetic: IntegerArithmetic = .onnxruntime

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
/// folded the stem BN into the conv, `norm` is nil and `conv.bias` is set. A deep stem (timm's
/// `stem_type='deep'`) has further 3x3 convs, each with its BN-ReLU, after the first one's, and
/// an anti-aliased one (timm's `aa_layer=BlurPool2d`) blurs after a stride-1 max pool.
public struct Stem: Sendable {
    public var conv: Conv2D
    public var norm: BatchNorm?
    public var relu: Bool
    /// The convs after the first in a deep stem (timm's `conv1`/`norm1`, `conv2`/`norm2`), in order.
    public var deep: [StemConvolution] = []
    public var pool: Pool2D?
    /// The blur-and-subsample after `pool` (timm's `BlurPool2d`), when the stem is anti-aliased.
    public var blur: BlurPool2D? = nil

    public init(
        conv: Conv2D, norm: BatchNorm?, relu: Bool, deep: [StemConvolution] = [], pool: Pool2D?,
        blur: BlurPool2D? = nil
    ) {
        self.conv = conv
        self.norm = norm
        self.relu = relu
        self.deep = deep
        self.pool = pool
        self.blur = blur
    }

    /// True when a BatchNorm was folded into the conv (it has a bias and no BN follows).
    public var normFolded: Bool { norm == nil && conv.bias != nil }
    public var outChannels: Int { deep.last?.conv.outChannels ?? conv.outChannels }
    /// Every conv of the stem with the BN after it, the first one's included, in order.
    public var convolutions: [StemConvolution] { [StemConvolution(conv: conv, norm: norm)] + deep }
    package var tensors: [Tensor] {
        convolutions.flatMap { [$0.conv.weight] + ($0.conv.bias.map { [$0] } ?? []) + ($0.norm?.tensors ?? []) }
    }
}

/// A conv of the stem with its BatchNorm (nil when none, or folded into the conv's bias). In a deep stem a
/// ReLU follows each; the first one's is `Stem.relu`.
public struct StemConvolution: Sendable {
    public var conv: Conv2D
    public var norm: BatchNorm?

    public init(conv: Conv2D, norm: BatchNorm?) {
        self.conv = conv
        self.norm = norm
    }

    public var normFolded: Bool { norm == nil && conv.bias != nil }
}

/// Anti-aliased downsampling (Zhang 2019, timm's `BlurPool2d`): every channel padded by reflection, then
/// filtered with the binomial kernel ([1, 2, 1] x [1, 2, 1] / 16 for a side of 3) at `stride`. The filter
/// is fixed by the side, so files do not store it.
public struct BlurPool2D: Sendable, Equatable {
    public var kernel: Int
    public var stride: Int

    public init(kernel: Int = 3, stride: Int = 2) {
        self.kernel = kernel
        self.stride = stride
    }

    /// The largest side a file may give (timm makes 3 and 5).
    public static let maximumKernel = 7

    /// Reflection padding on each side (timm's `get_padding(kernel, stride)`).
    public var padding: Int { (stride - 1 + kernel - 1) / 2 }

    /// The 1-D binomial coefficients divided by their sum; the 2-D filter is their outer product.
    public var coefficients: [Float] {
        var row: [Float] = [1]
        for _ in 1..<max(kernel, 1) { row = zip(row + [0], [0] + row).map { $0 + $1 } }
        let sum = row.reduce(0, +)
        return row.map { $0 / sum }
    }

    /// The 2-D filter applied to every channel, row by row: the coefficients' outer product with themselves.
    public var filter: [Float] {
        let row = coefficients
        return row.flatMap { vertical in row.map { vertical * $0 } }
    }

    /// Output height and width for an input of the given size.
    public func outputSize(_ height: Int, _ width: Int) -> (Int, Int) {
        (windows(height + 2 * padding, kernel, stride), windows(width + 2 * padding, kernel, stride))
    }
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
