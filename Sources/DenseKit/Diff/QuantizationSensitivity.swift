import DenseKitExecute
import DenseKitGraph

/// `diff FLOAT INT8 --sensitivity`: which canonical layers of an int8 model lose the accuracy. For each layer the int8
/// model quantises, the float model with that one layer taken from the int8 model (its weights' codes and its
/// activations' quantisation, input included) runs on the integer executor, every other layer in float, and its
/// output is compared with the float model's own. The error each layer causes alone, ranked worst first.
public struct QuantizationSensitivity {
    public struct Entry: Sendable {
        public var layer: String
        /// The output's largest error over the images, relative to the float output's scale (worst image), and
        /// its lowest cosine.
        public var output: ErrorMetrics
        /// Images whose top-1 class is the float model's.
        public var agreements: Int
        public var images: Int
        public var top1Agreement: Double { Double(agreements) / Double(max(images, 1)) }

        /// This entry over more images.
        mutating func merge(_ other: Entry) {
            output = output.merged(other.output)
            agreements += other.agreements
            images += other.images
        }
    }

    public enum Error: Swift.Error, CustomStringConvertible {
        case floatIsQuantized
        case notQuantized

        public var description: String {
            switch self {
            case .floatIsQuantized:
                return "--sensitivity compares a float model (first) with its int8 model; this one is int8"
            case .notQuantized: return "--sensitivity needs an int8 model second; this one has no quantisation"
            }
        }
    }

    private let reference: QuantizedExecutor
    private let hybrids: [(layer: String, executor: QuantizedExecutor)]

    /// Throws `Error` (about the first model when it is quantised, the second when it is not), or when the two are
    /// not the same architecture or a hybrid does not validate.
    public init(float: DenseNet, int8: DenseNet) throws {
        guard !float.isQuantized else { throw Error.floatIsQuantized }
        guard int8.isQuantized else { throw Error.notQuantized }
        let reasons = ModelDiff.correspondence(float, int8)
        guard reasons.isEmpty else { throw ModelDiff.Error.differentArchitectures(reasons) }
        reference = QuantizedExecutor(float)
        let quantizedSteps = int8.steps
        hybrids = try quantizedSteps.indices.compactMap { index in
            guard quantizedSteps[index].isQuantized else { return nil }
            var position = -1
            let hybrid = float.mappingSteps { step in
                position += 1
                return position == index ? quantizedSteps[index] : step
            }
            try hybrid.validate()
            return (quantizedSteps[index].layer.name, QuantizedExecutor(hybrid))
        }
    }

    /// The layers `run` ranks, in execution order.
    public var layers: [String] { hybrids.map(\.layer) }

    /// Every layer's entry over the batch (NCHW [batch, C, height, width]), in execution order; `progress` after each
    /// layer.
    public func run(
        _ input: [Float], batch: Int, height: Int, width: Int, progress: (Int) -> Void = { _ in }
    ) throws -> [Entry] {
        try reference.check(height: height, width: width)
        let per = input.count / max(batch, 1)
        let images = (0..<batch).map { Array(input[($0 * per)..<(($0 + 1) * per)]) }
        let floats = images.map { reference.run(image: $0, height: height, width: width) }
        var entries: [Entry] = []
        for (done, (layer, executor)) in hybrids.enumerated() {
            var entry = Entry(layer: layer, output: ErrorMetrics(), agreements: 0, images: 0)
            for (image, want) in zip(images, floats) {
                let got = executor.run(image: image, height: height, width: width)
                let metrics = got.withUnsafeBufferPointer { g in
                    want.withUnsafeBufferPointer { ErrorMetrics(g, $0) }
                }
                entry.merge(
                    Entry(
                        layer: layer, output: metrics,
                        agreements: ModelDiff.top(got, 1) == ModelDiff.top(want, 1) ? 1 : 0, images: 1))
            }
            entries.append(entry)
            progress(done + 1)
        }
        return entries
    }

    /// `entries` worst first: by output error, then cosine (a NaN is the worst).
    public static func ranked(_ entries: [Entry]) -> [Entry] {
        func error(_ entry: Entry) -> Float { entry.output.maxRel.isNaN ? .infinity : entry.output.maxRel }
        return entries.sorted { error($0) != error($1) ? error($0) > error($1) : $0.output.cosine < $1.output.cosine }
    }

    /// Entries of the same layers over more images, merged layer by layer.
    public static func merged(_ entries: [Entry], _ more: [Entry]) -> [Entry] {
        guard !entries.isEmpty else { return more }
        return zip(entries, more).map { pair in
            var entry = pair.0
            entry.merge(pair.1)
            return entry
        }
    }
}
