import DenseKitGraph

/// What `verify --json` prints (keys in docs/cli.md and the contract).
public struct VerifyReport: Encodable, Sendable {
    public struct Parameters: Encodable, Sendable {
        public var trainable: Int
        public var withBatchNormStatistics: Int
        public var stored: Int
    }

    public struct Deviation: Encodable, Sendable {
        public var layer: String
        public var check: String
        public var expected: String
        public var found: String
    }

    /// The architecture matched, or null.
    public var architecture: Nullable<String>
    public var matches: Bool
    public var closest: String
    public var growthRate: Int
    public var blocks: [Int]
    public var compression: Nullable<Double>
    public var bottleneck: Bool
    public var classes: Int
    public var batchNormEpsilon: [Double]
    public var head: HeadReport
    /// Channels of the input (reported, never a deviation).
    public var inputChannels: Int
    /// [height, width] where the file fixes them.
    public var inputSize: Nullable<[Int]>
    public var finalMapSize: Nullable<[Int]>
    public var parameters: Parameters
    public var deviations: [Deviation]

    public init(_ report: Verifier.Report) {
        architecture = Nullable(report.matches ? report.spec.name : nil)
        matches = report.matches
        closest = report.spec.name
        growthRate = report.growthRate
        blocks = report.blocks
        compression = Nullable(report.compression)
        bottleneck = report.bottleneck
        classes = report.classes
        batchNormEpsilon = report.epsilons.map(Double.init)
        head = HeadReport(report.head, classes: report.classes)
        inputChannels = report.inputChannels
        inputSize = Nullable(report.inputSize.map { [$0.height, $0.width] })
        finalMapSize = Nullable(report.finalMapSize.map { [$0.height, $0.width] })
        parameters = Parameters(
            trainable: report.parameters.trainable,
            withBatchNormStatistics: report.parameters.withBatchNormStatistics, stored: report.storedParameters)
        deviations = report.deviations.map {
            Deviation(layer: $0.layer, check: $0.check, expected: $0.expected, found: $0.found)
        }
    }
}
