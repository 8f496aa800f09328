import DenseKitExecute
import DenseKitGraph

/// Runs two copies of one DenseNet side by side on the same input and compares every canonical layer.
///
/// The two executions advance in lockstep, one canonical layer at a time: each pair of activations is
/// compared and then overwritten by the next layer, so memory stays that of two single runs.
public struct ModelDiff {
    public struct Layer: Sendable {
        public var name: String
        public var metrics: ErrorMetrics
        public var withinTolerance: Bool
        /// Channels of this layer's output whose difference exceeds the tolerance (first...last).
        public var divergentChannels: ClosedRange<Int>?
        /// Where this layer's channels sit in its dense block's concatenated features.
        public var blockChannelOffset: Int?
        /// Where a model gives this layer as int8 codes (B's, else A's): the largest share of them at the type's
        /// limits over the images.
        public var saturation: Float? = nil

        /// The divergent channels as channels of the block's concatenated features.
        public var divergentBlockChannels: ClosedRange<Int>? {
            guard let channels = divergentChannels, let offset = blockChannelOffset else { return nil }
            return (offset + channels.lowerBound)...(offset + channels.upperBound)
        }
    }

    /// One image's outcome.
    public struct Sample: Sendable {
        public var top1A: Int
        public var top1B: Int
        public var top5A: [Int]
        public var top5B: [Int]
        /// The image's output compared.
        public var output: ErrorMetrics
        /// The first layer out of tolerance on this image, if any.
        public var firstDivergence: String?
        public var top1Agrees: Bool { top1A == top1B }
        public var top5Agrees: Bool { Set(top5A) == Set(top5B) }
    }

    public struct Result: Sendable {
        public var layers: [Layer]
        public var output: ErrorMetrics
        public var samples: [Sample]
        public var tolerance: Tolerance
        /// Whether either model is quantised (its layers then also report SQNR and saturation).
        public var quantized = false

        public var firstDivergence: Layer? { layers.first { !$0.withinTolerance } }
        public var withinTolerance: Bool { firstDivergence == nil }
        public var top1Agreement: Double { Double(samples.filter(\.top1Agrees).count) / Double(max(samples.count, 1)) }
        public var top5Agreement: Double { Double(samples.filter(\.top5Agrees).count) / Double(max(samples.count, 1)) }

        /// This result and `other`'s (more images of the same two models) as one.
        public mutating func merge(_ other: Result) {
            guard !layers.isEmpty else {
                self = other
                return
            }
            for i in layers.indices where i < other.layers.count {
                layers[i].metrics = layers[i].metrics.merged(other.layers[i].metrics)
                layers[i].withinTolerance = layers[i].withinTolerance && other.layers[i].withinTolerance
                layers[i].divergentChannels = ModelDiff.union(
                    layers[i].divergentChannels, other.layers[i].divergentChannels)
                layers[i].saturation = ModelDiff.worst(layers[i].saturation, other.layers[i].saturation)
            }
            output = output.merged(other.output)
            samples += other.samples
        }
    }

    public enum Error: Swift.Error, CustomStringConvertible {
        case differentArchitectures([String])
        public var description: String {
            switch self {
            case .differentArchitectures(let reasons):
                return "the two models are not the same architecture: " + reasons.joined(separator: "; ")
            }
        }
    }

    package let modelA: DenseNet
    package let tolerance: Tolerance
    package let executorA: Executor, executorB: Executor

    public init(
        _ modelA: DenseNet, _ modelB: DenseNet, tolerance: Tolerance = Tolerance(), threads: Int = 1,
        mode: ConvolutionMode = .default
    ) throws {
        let reasons = Self.correspondence(modelA, modelB)
        guard reasons.isEmpty else { throw Error.differentArchitectures(reasons) }
        self.modelA = modelA
        self.tolerance = tolerance
        // Prepared once: a dataset diff runs batch after batch on the same two executors.
        executorA = try Executor(modelA, threads: threads, mode: mode)
        executorB = try Executor(modelB, threads: threads, mode: mode)
    }

    /// The layers that do not correspond, named.
    package static func correspondence(_ modelA: DenseNet, _ modelB: DenseNet) -> [String] {
        var reasons: [String] = []
        if modelA.stem.outChannels != modelB.stem.outChannels {
            reasons.append("stem has \(modelA.stem.outChannels) vs \(modelB.stem.outChannels) channels")
        }
        /// The stem's geometry, which must agree for its maps to correspond ("conv 3x3/2 + 3x3/1 + pool + blur").
        func geometry(_ stem: Stem) -> String {
            "conv "
                + stem.convolutions.map { "\($0.conv.kernel)x\($0.conv.kernel)/\($0.conv.stride)" }.joined(
                    separator: " + ")
                + (stem.pool == nil ? "" : " + pool") + (stem.blur == nil ? "" : " + blur")
        }
        let (stemA, stemB) = (geometry(modelA.stem), geometry(modelB.stem))
        if stemA != stemB { reasons.append("stem is \(stemA) vs \(stemB)") }
        if modelA.blocks.count != modelB.blocks.count {
            reasons.append("\(modelA.blocks.count) vs \(modelB.blocks.count) dense blocks")
        }
        for (i, (x, y)) in zip(modelA.blocks, modelB.blocks).enumerated() {
            if x.layers.count != y.layers.count {
                reasons.append("\(CanonicalLayer.block(i + 1)) has \(x.layers.count) vs \(y.layers.count) layers")
            }
            if x.layers.first?.growth != y.layers.first?.growth {
                reasons.append(
                    """
                    \(CanonicalLayer.block(i + 1)) grows by \(x.layers.first?.growth ?? 0) vs \
                    \(y.layers.first?.growth ?? 0)
                    """
                )
            }
        }
        for (i, (x, y)) in zip(modelA.transitions, modelB.transitions).enumerated()
        where x.conv.outChannels != y.conv.outChannels {
            reasons.append(
                "\(CanonicalLayer.transition(i + 1)) outputs \(x.conv.outChannels) vs \(y.conv.outChannels) channels")
        }
        if modelA.head.pool != modelB.head.pool
            || modelA.head.dense.map(\.linear.outFeatures) != modelB.head.dense.map(\.linear.outFeatures)
        {
            reasons.append("head is \(modelA.head.summary) vs \(modelB.head.summary)")
        }
        return reasons
    }

    /// The larger of two saturations, either where one is missing.
    package static func worst(_ a: Float?, _ b: Float?) -> Float? {
        guard let a else { return b }
        return max(a, b ?? a)
    }

    /// `input` is NCHW [batch, C, height, width].
    public func run(_ input: [Float], batch: Int, height: Int, width: Int) throws -> Result {
        let per = modelA.stem.conv.inChannels * height * width
        var layers: [Layer] = []
        var output = ErrorMetrics()
        var samples: [Sample] = []
        for n in 0..<batch {
            let image = input[(n * per)..<((n + 1) * per)]
            let xa = try executorA.start(image: image, height: height, width: width)
            let xb = try executorB.start(image: image, height: height, width: width)
            var index = 0
            var blockOffset = 0
            var firstDivergence: String? = nil
            while let la = xa.next(), let lb = xb.next() {
                let metrics = ErrorMetrics(la.values, lb.values)
                let isDenseLayer = la.name.contains(".layer")
                if la.name == "stem" || la.name.hasPrefix("transition") { blockOffset = la.channels }
                let channels = divergentChannels(la, lb)
                let layer = Layer(
                    name: la.name, metrics: metrics, withinTolerance: tolerance.allows(metrics),
                    divergentChannels: channels,
                    blockChannelOffset: isDenseLayer ? blockOffset : nil, saturation: lb.saturation ?? la.saturation)
                if isDenseLayer { blockOffset += la.channels }
                if !layer.withinTolerance && firstDivergence == nil { firstDivergence = la.name }
                if n == 0 {
                    layers.append(layer)
                } else {
                    layers[index].metrics = layers[index].metrics.merged(metrics)
                    layers[index].withinTolerance = layers[index].withinTolerance && layer.withinTolerance
                    layers[index].divergentChannels = Self.union(layers[index].divergentChannels, channels)
                    layers[index].saturation = Self.worst(layers[index].saturation, layer.saturation)
                }
                if la.name == "head" {
                    output = n == 0 ? metrics : output.merged(metrics)
                    samples.append(
                        Sample(
                            top1A: Self.top(la.values, 1)[0], top1B: Self.top(lb.values, 1)[0],
                            top5A: Self.top(la.values, 5), top5B: Self.top(lb.values, 5), output: metrics,
                            firstDivergence: firstDivergence))
                }
                index += 1
            }
        }
        return Result(
            layers: layers, output: output, samples: samples, tolerance: tolerance,
            quantized: executorA.isQuantized || executorB.isQuantized)
    }

    private func divergentChannels(_ activationA: LayerActivation, _ activationB: LayerActivation) -> ClosedRange<Int>?
    {
        let size = activationA.height * activationA.width
        var scale: Float = 0
        for v in activationB.values { scale = max(scale, abs(v)) }
        let limit = tolerance.limit(scale: scale)
        var first: Int? = nil
        var last = 0
        for c in 0..<activationA.channels {
            var worst: Float = 0
            for i in (c * size)..<((c + 1) * size) {
                worst = max(worst, abs(activationA.values[i] - activationB.values[i]))
            }
            if !(worst <= limit) {
                if first == nil { first = c }
                last = c
            }
        }
        return first.map { $0...last }
    }

    package static func union(_ first: ClosedRange<Int>?, _ second: ClosedRange<Int>?) -> ClosedRange<Int>? {
        guard let first else { return second }
        guard let second else { return first }
        return min(first.lowerBound, second.lowerBound)...max(first.upperBound, second.upperBound)
    }

    /// The indices of the `count` largest scores, best first (the lower index on a tie).
    public static func topClasses(_ scores: [Float], _ count: Int) -> [Int] { top(scores, count) }

    /// The indices of the `count` largest scores, best first (the lower index on a tie).
    package static func top<Scores: RandomAccessCollection>(_ scores: Scores, _ count: Int) -> [Scores.Index]
    where Scores.Element == Float {
        Array(scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }.prefix(count))
    }
}
