import DenseKitImages

/// What `diff --json` prints for one input, and with `--images` for a dataset (keys in docs/cli.md).
public struct DiffJSONReport: Encodable, Sendable {
    public struct Tolerance: Encodable, Sendable {
        public var atol: ReportNumber
        public var rtol: ReportNumber
    }

    public struct Channels: Encodable, Sendable {
        public var from: Int
        public var to: Int
    }

    public struct Layer: Encodable, Sendable {
        public var name: String
        public var withinTolerance: Bool
        public var maxAbs: ReportNumber
        public var maxRel: ReportNumber
        public var cosine: ReportNumber
        public var nmse: ReportNumber
        /// Present only when a model is quantised: 10 log10(sum b^2 / sum (a - b)^2) (null when identical), and
        /// where it gives the layer as int8 codes, the share of them at the type's limits.
        public var sqnrDb: ReportNumber?
        public var saturation: ReportNumber?
        /// Present only where channels diverge: in this layer's output, and in its block's features.
        public var divergentChannels: Channels?
        public var blockChannels: Channels?

        init(_ layer: ModelDiff.Layer, quantized: Bool) {
            name = layer.name
            withinTolerance = layer.withinTolerance
            maxAbs = ReportNumber(layer.metrics.maxAbs)
            maxRel = ReportNumber(layer.metrics.maxRel)
            cosine = ReportNumber(layer.metrics.cosine)
            nmse = ReportNumber(layer.metrics.nmse)
            sqnrDb = quantized ? ReportNumber(layer.metrics.sqnr) : nil
            saturation = layer.saturation.map { ReportNumber($0) }
            divergentChannels = layer.divergentChannels.map { Channels(from: $0.lowerBound, to: $0.upperBound) }
            blockChannels = layer.divergentBlockChannels.map { Channels(from: $0.lowerBound, to: $0.upperBound) }
        }
    }

    public struct Sample: Encodable, Sendable {
        public var top1A: Int
        public var top1B: Int
        public var top1Agrees: Bool
        public var top5Agrees: Bool
    }

    public struct Output: Encodable, Sendable {
        public var maxAbs: ReportNumber
        public var maxRel: ReportNumber
        public var cosine: ReportNumber
        public var nmse: ReportNumber
        public var top1Agreement: ReportNumber
        public var top5Agreement: ReportNumber
        public var samples: [Sample]
    }

    /// One image of a dataset diff.
    public struct Image: Encodable, Sendable {
        public var file: String
        public var top1A: Int
        public var top1B: Int
        public var agrees: Bool
        public var top5Agrees: Bool
        public var maxAbs: ReportNumber
        public var maxRel: ReportNumber
        public var cosine: ReportNumber
        public var firstDivergence: Nullable<String>
    }

    public struct Totals: Encodable, Sendable {
        public struct Worst: Encodable, Sendable {
            public var file: String
            public var maxRel: ReportNumber
        }

        public struct FirstDivergence: Encodable, Sendable {
            public var layer: String
            public var images: Int
        }

        public var images: Int
        public var top1Agreement: ReportNumber
        public var top5Agreement: ReportNumber
        public var flips: [String]
        public var worst: [Worst]
        public var firstDivergences: [FirstDivergence]
    }

    public var withinTolerance: Bool
    public var tolerance: Tolerance
    public var output: Output
    public var layers: [Layer]
    public var firstDivergence: Nullable<Layer>
    /// One layer of `--sensitivity`: the output error when it alone runs quantised.
    public struct SensitivityEntry: Encodable, Sendable {
        public var layer: String
        public var outputMaxRel: ReportNumber
        public var cosine: ReportNumber
        public var top1Agreement: ReportNumber

        init(_ entry: QuantizationSensitivity.Entry) {
            layer = entry.layer
            outputMaxRel = ReportNumber(entry.output.maxRel)
            cosine = ReportNumber(entry.output.cosine)
            top1Agreement = ReportNumber(entry.top1Agreement)
        }
    }

    /// Present only with `--sensitivity`: the layers worst first.
    public var sensitivity: [SensitivityEntry]?
    /// A dataset diff's: present only with `--images`.
    public var images: [Image]?
    public var totals: Totals?
    public var skipped: [SkippedFile]?

    public init(_ result: ModelDiff.Result, sensitivity: [QuantizationSensitivity.Entry]? = nil) {
        self.sensitivity = sensitivity.map { QuantizationSensitivity.ranked($0).map(SensitivityEntry.init) }
        withinTolerance = result.withinTolerance
        tolerance = Tolerance(
            atol: ReportNumber(result.tolerance.absolute), rtol: ReportNumber(result.tolerance.relative))
        output = Output(
            maxAbs: ReportNumber(result.output.maxAbs), maxRel: ReportNumber(result.output.maxRel),
            cosine: ReportNumber(result.output.cosine), nmse: ReportNumber(result.output.nmse),
            top1Agreement: ReportNumber(result.top1Agreement), top5Agreement: ReportNumber(result.top5Agreement),
            samples: result.samples.map {
                Sample(top1A: $0.top1A, top1B: $0.top1B, top1Agrees: $0.top1Agrees, top5Agrees: $0.top5Agrees)
            })
        layers = result.layers.map { Layer($0, quantized: result.quantized) }
        firstDivergence = Nullable(result.firstDivergence.map { Layer($0, quantized: result.quantized) })
    }

    public init(_ report: DatasetDiff.Report) {
        self.init(report.result, sensitivity: report.sensitivity)
        images = report.images.map { image in
            let sample = image.sample
            return Image(
                file: image.file, top1A: sample.top1A, top1B: sample.top1B, agrees: sample.top1Agrees,
                top5Agrees: sample.top5Agrees, maxAbs: ReportNumber(sample.output.maxAbs),
                maxRel: ReportNumber(sample.output.maxRel), cosine: ReportNumber(sample.output.cosine),
                firstDivergence: Nullable(sample.firstDivergence))
        }
        totals = Totals(
            images: report.images.count, top1Agreement: ReportNumber(report.result.top1Agreement),
            top5Agreement: ReportNumber(report.result.top5Agreement), flips: report.flips.map(\.file),
            worst: report.worst(5).map { Totals.Worst(file: $0.file, maxRel: ReportNumber($0.sample.output.maxRel)) },
            firstDivergences: report.firstDivergences.map { Totals.FirstDivergence(layer: $0.layer, images: $0.images) }
        )
        skipped = report.skipped.map { SkippedFile(file: $0.file, error: $0.description) }
    }
}
