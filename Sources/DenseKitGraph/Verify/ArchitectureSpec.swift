/// One architecture from the paper's tables (or the authors' released models), as the verifier expects it.
///
/// Sources: Huang et al., "Densely Connected Convolutional Networks" (CVPR 2017), Table 1 (ImageNet)
/// and Table 2 (CIFAR/SVHN); DenseNet-161 from torchvision and the authors' README.
public struct ArchitectureSpec: Sendable, Equatable {
    public enum StemKind: String, Sendable {
        /// Conv7x7/2 pad 3 -> BN -> ReLU -> MaxPool3x3/2 pad 1, for 224x224 inputs.
        case imagenet
        /// Conv3x3/1 pad 1, for 32x32 inputs.
        case cifar
    }

    public var name: String
    public var stem: StemKind
    public var growthRate: Int
    public var blocks: [Int]
    public var bottleneck: Bool
    public var compression: Double
    public var stemFilters: Int
    /// Classes of the paper's model (1000 for ImageNet, 10 for CIFAR-10); the verifier reports, not checks, classes.
    public var paperClasses: Int

    public init(
        name: String, stem: StemKind, growthRate: Int, blocks: [Int], bottleneck: Bool,
        compression: Double, stemFilters: Int, paperClasses: Int
    ) {
        self.name = name
        self.stem = stem
        self.growthRate = growthRate
        self.blocks = blocks
        self.bottleneck = bottleneck
        self.compression = compression
        self.stemFilters = stemFilters
        self.paperClasses = paperClasses
    }

    /// Spatial input size the paper uses.
    public var inputSize: Int { stem == .imagenet ? 224 : 32 }
    /// Spatial size before the global pool.
    public var finalSpatialSize: Int { stem == .imagenet ? 7 : 8 }
    public var bottleneckWidth: Int { 4 * growthRate }

    package static func imagenet(_ name: String, _ blocks: [Int], growth: Int = 32, stem: Int = 64) -> ArchitectureSpec
    {
        ArchitectureSpec(
            name: name, stem: .imagenet, growthRate: growth, blocks: blocks, bottleneck: true,
            compression: 0.5, stemFilters: stem, paperClasses: 1000)
    }

    package static func cifar(_ name: String, depth: Int, growth: Int, bc: Bool) -> ArchitectureSpec {
        let layersPerBlock = (depth - 4) / (bc ? 6 : 3)
        return ArchitectureSpec(
            name: name, stem: .cifar, growthRate: growth, blocks: [layersPerBlock, layersPerBlock, layersPerBlock],
            bottleneck: bc,
            compression: bc ? 0.5 : 1.0, stemFilters: bc ? 2 * growth : 16, paperClasses: 10)
    }

    /// Every architecture `verify` knows, in the order the contract lists them.
    public static let all: [ArchitectureSpec] = [
        imagenet("densenet121", [6, 12, 24, 16]),
        imagenet("densenet169", [6, 12, 32, 32]),
        imagenet("densenet201", [6, 12, 48, 32]),
        imagenet("densenet264", [6, 12, 64, 48]),
        imagenet("densenet161", [6, 12, 36, 24], growth: 48, stem: 96),
        cifar("densenet-L40-k12", depth: 40, growth: 12, bc: false),
        cifar("densenet-L100-k12", depth: 100, growth: 12, bc: false),
        cifar("densenet-L100-k24", depth: 100, growth: 24, bc: false),
        cifar("densenet-bc-L100-k12", depth: 100, growth: 12, bc: true),
        cifar("densenet-bc-L250-k24", depth: 250, growth: 24, bc: true),
        cifar("densenet-bc-L190-k40", depth: 190, growth: 40, bc: true),
    ]

    public static func named(_ name: String) -> ArchitectureSpec? { all.first { $0.name == name } }

    /// Output channels of each transition: floor(theta * input channels).
    public var transitionWidths: [Int] {
        var channels = stemFilters
        var widths: [Int] = []
        for (b, n) in blocks.enumerated() {
            channels += n * growthRate
            if b < blocks.count - 1 {
                channels = Int((compression * Double(channels)).rounded(.down))
                widths.append(channels)
            }
        }
        return widths
    }

    /// Parameters in torch's convention (conv weights, BN gamma/beta, FC weight and bias) and
    /// with BN statistics (Keras's `count_params()`), for the given number of classes.
    public func parameterCount(classes: Int) -> ParameterCount {
        let kernel = stem == .imagenet ? 7 : 3
        var count = ParameterCount()
        count.addConv(kernel * kernel * 3 * stemFilters)
        if stem == .imagenet { count.addBatchNorm(stemFilters) }
        var channels = stemFilters
        for (b, n) in blocks.enumerated() {
            for _ in 0..<n {
                count.addBatchNorm(channels)
                if bottleneck {
                    count.addConv(channels * bottleneckWidth)
                    count.addBatchNorm(bottleneckWidth)
                    count.addConv(9 * bottleneckWidth * growthRate)
                } else {
                    count.addConv(9 * channels * growthRate)
                }
                channels += growthRate
            }
            if b < blocks.count - 1 {
                let out = transitionWidths[b]
                count.addBatchNorm(channels)
                count.addConv(channels * out)
                channels = out
            }
        }
        count.addBatchNorm(channels)
        count.addConv(channels * classes + classes)
        return count
    }
}
