import DenseKitGraph

/// What `inspect --json` prints: the recognised structure and what the file stores (keys in
/// docs/cli.md and the contract).
public struct InspectReport: Encodable, Sendable {
    public struct Input: Encodable, Sendable {
        public var name: String
        public var layout: String
        /// In the source's layout; null where the file leaves a size open.
        public var shape: [Int?]
        /// The model's own preprocessing before the stem (x * scale + offset per channel); null when none.
        public var transform: Nullable<Transform>
    }

    public struct Transform: Encodable, Sendable {
        public var scale: [Float]
        public var offset: [Float]
        public var origin: [String]
        /// The codes an int8 model computes it on (`uint8`, `int8`); absent when it computes in float.
        public var codes: String?
    }

    public struct Stem: Encodable, Sendable {
        public var kernel: Int
        public var stride: Int
        public var outChannels: Int
        /// "present", "folded" (into the conv) or "none".
        public var batchNorm: String
        public var maxPool: Bool
        /// The stem's convs: 1, or 3 for timm's deep stem (`kernel` and `stride` are the first one's).
        public var convs: Int
        /// Whether an anti-aliasing blur pool (timm's `BlurPool2d`) follows the max pool.
        public var blurPool: Bool
    }

    public struct Block: Encodable, Sendable {
        public var layers: Int
        public var inChannels: Int
        public var outChannels: Int
        public var growthRate: Int
        public var bottleneckWidth: Nullable<Int>
    }

    public struct Transition: Encodable, Sendable {
        public var inChannels: Int
        public var outChannels: Int
    }

    public var file: String
    public var format: String
    public var producer: String
    public var opset: Nullable<Int>
    public var input: Input
    public var stem: Stem
    public var blocks: [Block]
    public var transitions: [Transition]
    public var head: HeadReport
    public var dtypes: [String]
    public var tensors: Int
    public var parameters: Int
    public var bytes: Int
    public var notes: [String]

    public init(_ net: DenseNet) {
        let source = net.source
        let spec = net.input
        file = source.path
        format = source.format.rawValue
        producer = source.producer
        opset = Nullable(source.opset)
        input = Input(
            name: spec.name, layout: spec.layout.rawValue,
            shape: spec.layout == .nchw
                ? [spec.batch, spec.channels, spec.height, spec.width]
                : [spec.batch, spec.height, spec.width, spec.channels],
            transform: Nullable(
                net.inputTransform.map {
                    Transform(
                        scale: $0.scale, offset: $0.offset, origin: $0.origin,
                        codes: $0.quantized?.input.storage.rawValue)
                }))
        stem = Stem(
            kernel: net.stem.conv.kernel, stride: net.stem.conv.stride, outChannels: net.stem.outChannels,
            batchNorm: net.stem.norm != nil ? "present" : net.stem.normFolded ? "folded" : "none",
            maxPool: net.stem.pool != nil, convs: net.stem.convolutions.count, blurPool: net.stem.blur != nil)
        blocks = net.blocks.map { block in
            Block(
                layers: block.layers.count, inChannels: block.inChannels, outChannels: block.outChannels,
                growthRate: block.layers.first?.growth ?? 0,
                bottleneckWidth: Nullable(block.layers.first?.bottleneck?.conv.outChannels))
        }
        transitions = net.transitions.map { Transition(inChannels: $0.norm.channels, outChannels: $0.conv.outChannels) }
        head = HeadReport(net.head, classes: net.classes)
        dtypes = net.storedDTypes
        tensors = source.storedTensors
        parameters = source.storedParameters
        bytes = source.storedBytes
        notes = source.notes
    }
}

/// The head as `inspect --json` and `verify --json` report it.
public struct HeadReport: Encodable, Sendable {
    public struct Dense: Encodable, Sendable {
        public var inFeatures: Int
        public var outFeatures: Int
        public var activation: String
    }

    /// The final BatchNorm's channels.
    public var inFeatures: Int
    /// Values per image (per position without a pool).
    public var classes: Int
    public var softmax: Bool
    public var pool: Nullable<String>
    /// The output's activation.
    public var activation: String
    public var dense: [Dense]
    public var description: String

    public init(_ head: Head, classes: Int) {
        inFeatures = head.norm.channels
        self.classes = classes
        softmax = head.softmax
        pool = Nullable(head.pool?.rawValue)
        activation = head.activation.rawValue
        dense = head.dense.map {
            Dense(
                inFeatures: $0.linear.inFeatures, outFeatures: $0.linear.outFeatures,
                activation: $0.activation.rawValue)
        }
        description = head.summary
    }
}
