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

    /// The float model's executor; the int8 model's layers run on it too, one at a time in place of the float one.
    private let executor: QuantizedExecutor
    private let floatSteps: [LayerStep]
    /// The int8 model's layers that carry quantisation, by their position in the walk.
    private let quantizedSteps: [(index: Int, step: LayerStep)]
    /// The int8 model's input transform when it computes it on codes: the swapped stem's input is made by it.
    private let int8InputTransform: InputTransform?

    /// Throws `Error` (about the first model when it is quantised, the second when it is not), or when the two are
    /// not the same architecture or a model with one layer swapped does not validate.
    public init(float: DenseNet, int8: DenseNet) throws {
        guard !float.isQuantized else { throw Error.floatIsQuantized }
        guard int8.isQuantized else { throw Error.notQuantized }
        let reasons = ModelDiff.correspondence(float, int8)
        guard reasons.isEmpty else { throw ModelDiff.Error.differentArchitectures(reasons) }
        executor = QuantizedExecutor(float, arithmetic: int8.integerArithmetic)
        floatSteps = float.steps
        int8InputTransform = int8.inputTransform?.quantized != nil ? int8.inputTransform : nil
        let steps = int8.steps
        quantizedSteps = try steps.indices.compactMap { index in
            guard steps[index].isQuantized else { return nil }
            var position = -1
            let hybrid = float.mappingSteps { step in
                position += 1
                return position == index ? steps[index] : step
            }
            try hybrid.validate()  // the swapped layer fits the float model's
            return (index, steps[index])
        }
    }

    /// The layers `run` ranks, in execution order.
    public var layers: [String] { quantizedSteps.map(\.step.layer.name) }

    /// Every layer's entry over the batch (NCHW [batch, C, height, width]), in execution order; `progress` after each
    /// image with the layers done so far. The network before a swapped layer is the float model's, so each image runs
    /// the float model once, and from each quantised layer on once more from the float state before it.
    public func run(
        _ input: [Float], batch: Int, height: Int, width: Int, progress: (Int) -> Void = { _ in }
    ) throws -> [Entry] {
        try executor.check(height: height, width: width)
        let per = input.count / max(batch, 1)
        var entries = quantizedSteps.map {
            Entry(layer: $0.step.layer.name, output: ErrorMetrics(), agreements: 0, images: 0)
        }
        for n in 0..<batch {
            let image = Array(input[(n * per)..<((n + 1) * per)])
            var state = executor.start(image: image, height: height, width: width)
            var swapped: [[Float]] = []
            var floatOutput: [Float] = []
            var next = 0  // the next quantised layer
            for (index, step) in floatSteps.enumerated() {
                if next < quantizedSteps.count, quantizedSteps[next].index == index {
                    var branch = state
                    if index == 0, let transform = int8InputTransform {
                        branch = executor.start(image: image, height: height, width: width, transform: transform)
                    }
                    var output = executor.advance(&branch, quantizedSteps[next].step)
                    for later in floatSteps[(index + 1)...] where output == nil {
                        output = executor.advance(&branch, later)
                    }
                    swapped.append(output ?? [])
                    next += 1
                    progress(n * quantizedSteps.count + next)
                }
                if let output = executor.advance(&state, step) { floatOutput = output }
            }
            for (i, got) in swapped.enumerated() {
                let metrics = got.withUnsafeBufferPointer { g in
                    floatOutput.withUnsafeBufferPointer { ErrorMetrics(g, $0) }
                }
                let agrees = ModelDiff.top(got, 1) == ModelDiff.top(floatOutput, 1)
                entries[i].merge(Entry(layer: entries[i].layer, output: metrics, agreements: agrees ? 1 : 0, images: 1))
            }
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
