import ArgumentParser
import DenseKit
import DenseKitExecute
import DenseKitFormats
import DenseKitGraph
import DenseKitImages
import Foundation

/// Options shared by the commands that execute a model.
struct ExecutionOptions: ParsableArguments {
    @Option(help: "Layout of the input array (default: the model's own input layout).")
    var layout: InputSpec.Layout?
    @Option(help: "Threads for the executor (default: all cores; 1 is strictly single-threaded).")
    var threads: Int?
    @Flag(
        help: ArgumentHelp(
            "How the dense layers' 3x3 convs are computed (default: --\(ConvolutionMode.default.rawValue)).",
            discussion:
                """
                --fast: Winograd F(4x4) on the larger maps (see the README for its measured error); --exact: \
                direct convolution.
                """
        ))
    var convolutions: ConvolutionMode?

    func validate() throws {
        if let threads, threads < 1 || threads > 256 {
            throw ValidationError("--threads must be between 1 and 256, not \(threads).")
        }
    }

    var inputLayout: InputSpec.Layout? { layout }
    /// `--threads`, at most the cores this process may run on: more would only wait for one another
    /// (256 workers on 2 cores made a batch take 40 times as long).
    var threadCount: Int { min(threads ?? .max, ProcessInfo.processInfo.activeProcessorCount) }
    var mode: ConvolutionMode { convolutions ?? .default }

}

extension ConvolutionMode: EnumerableFlag {}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the SIMD executor on an input array.")

    @Argument(help: "The model file.") var model: String
    @OptionGroup var inputs: InputOptions
    @Option(
        name: .shortAndLong,
        help:
            """
            Where to write the float32 output (.npy): [N, classes], [N, features] after a global pool, or [N, C, \
            H, W] without one (required with --input).
            """
    ) var output: String?
    @OptionGroup var execution: ExecutionOptions
    @Option(help: "Time this many runs after one warm-up.") var `repeat`: Int = 1
    @Option(help: "With --images: print each image's K best classes.") var top: Int?
    @Option(help: "Class names for --top, one per line (default: ImageNet-1k's for a 1000-class model).") var labels:
        String?
    @Option(help: "Images per batch with --images.") var batch: Int = 16
    @Flag(help: "Go on past images that cannot be read, and list them.") var skipBad = false
    @OptionGroup var rendering: OutputOptions
    var input: String? { inputs.input }
    var images: [String] { inputs.images }
    var preprocessing: PreprocessingOptions { inputs.preprocessing }
    var json: Bool { rendering.json }

    func validate() throws {
        guard `repeat` >= 1 && `repeat` <= 100_000 else {
            throw ValidationError("--repeat must be between 1 and 100000.")
        }
        try inputs.requireOne()
        if input != nil && output == nil { throw ValidationError("--output is required with --input.") }
        if let top, !(1...1000).contains(top) { throw ValidationError("--top must be between 1 and 1000.") }
        if (top != nil || labels != nil) && images.isEmpty {
            throw ValidationError("--top and --labels are for --images.")
        }
        guard (1...1024).contains(batch) else { throw ValidationError("--batch must be between 1 and 1024.") }
    }

    func run() throws {
        guard let input, let output else { return try runImages() }
        let clock = ContinuousClock()
        var loadMs = 0.0
        var prepareMs = 0.0
        // The graph lives only inside this function: once the executor has packed its weights, the
        // imported copy is released before the workspace is allocated (peak memory).
        func prepare() throws -> (Executor, ModelInput) {
            // The input is read first: from opening the model to the executor being ready is one
            // stretch of time.
            let array = try CommandFailure.about(input) { try NPY.read(path: input) }
            let loadStart = clock.now
            let net = try loadModel(model)
            let prepareStart = clock.now
            loadMs = milliseconds(prepareStart - loadStart)
            let executor = try CommandFailure.about(model) {
                try Executor(net, threads: execution.threadCount, mode: execution.mode)
            }
            prepareMs = milliseconds(clock.now - prepareStart)
            let modelInput = try CommandFailure.about(input) {
                try ModelInput(array, layout: execution.inputLayout, for: net)
            }
            return (executor, modelInput)
        }
        let (executor, modelInput) = try prepare()

        var outputs: [Float] = []
        var times: [Double] = []
        let runs = `repeat` > 1 ? `repeat` + 1 : 1
        for i in 0..<runs {
            let start = clock.now
            outputs = try CommandFailure.about(model) {
                try executor.run(
                    modelInput.values, batch: modelInput.batch, height: modelInput.height, width: modelInput.width)
            }
            if runs == 1 || i > 0 { times.append(milliseconds(clock.now - start)) }
        }
        let shape =
            [modelInput.batch]
            + (try CommandFailure.about(model) {
                try executor.outputShape(height: modelInput.height, width: modelInput.width)
            })
        try CommandFailure.about(output) { try NPY.write(NPY.Array(shape: shape, values: outputs), to: output) }
        let sorted = times.sorted()
        let median =
            sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        let arithmetic =
            executor.integerArithmetic.map { "int8, \($0.framework)'s arithmetic" } ?? "--" + executor.mode.rawValue
        if json {
            printJSON(
                RunReport(
                    outputShape: shape, loadMs: loadMs, prepareMs: prepareMs,
                    runMs: RunReport.Times(median: median, min: sorted[0]), threads: executor.threads,
                    convolutions: executor.isQuantized ? "int8" : executor.mode.rawValue, runs: times.count))
        } else {
            log(
                """
                ran \(model) on \(modelInput.batch) image\(modelInput.batch == 1 ? "" : "s") of \
                \(modelInput.height)x\(modelInput.width): median \
                \(String(format: "%.2f", median)) ms, min \(String(format: "%.2f", sorted[0])) ms over \
                \(times.count) run\(times.count == 1 ? "" : "s"), \(executor.threads) \
                thread\(executor.threads == 1 ? "" : "s"), \(arithmetic); load \
                \(String(format: "%.1f", loadMs)) ms, prepare \(String(format: "%.1f", prepareMs)) ms
                """
            )
            print("wrote \(output): \(shape)")
        }
    }
}

extension Run {
    /// `run --images`: the images in batches, each image's top classes, and the outputs to --output.
    private func runImages() throws {
        let net = try loadModel(model)
        let executor = try CommandFailure.about(model) {
            try Executor(net, threads: execution.threadCount, mode: execution.mode)
        }
        let set = ImageSet(
            files: try imageFiles(images),
            preprocessing: try preprocessing.preprocessing(for: [(net, model)]), skipBad: skipBad)
        let names = try classNames(net)
        var rows: [(file: String, values: ArraySlice<Float>)] = []
        var all: [Float] = []
        var shape: [Int] = []
        let skipped = try withProgress("run", blaming: model) { bar in
            try set.forEachInput(size: batch) { files, x in
                let outputs = try executor.run(x.values, batch: x.batch, height: x.height, width: x.width)
                shape = try executor.outputShape(height: x.height, width: x.width)
                let per = outputs.count / max(x.batch, 1)
                for (i, f) in files.enumerated() { rows.append((f, outputs[(i * per)..<((i + 1) * per)])) }
                if output != nil { all += outputs }
                bar.update(rows.count, set.files.count)
            }
        }
        for f in skipped { log("skipped \(f.file): \(f.description)") }
        if let output {
            try CommandFailure.about(output) {
                try NPY.write(NPY.Array(shape: [rows.count] + shape, values: all), to: output)
            }
        }
        let count = top ?? 5
        let best = rows.map { row in
            ModelDiff.topClasses(Array(row.values), count).map {
                (index: $0, score: row.values[row.values.startIndex + $0])
            }
        }
        if json {
            printJSON(
                ImageRunReport(
                    outputShape: [rows.count] + shape,
                    images: zip(rows, best).map { row, top in
                        ImageRunReport.Image(
                            file: row.file,
                            top: top.map { .init(index: $0.index, label: name($0.index, names), score: $0.score) })
                    }, skipped: skipped.map { SkippedFile(file: $0.file, error: $0.description) }))
            return
        }
        for (row, top) in zip(rows, best) {
            print(
                row.file + ": "
                    + top.map {
                        """
                        \(name($0.index, names).map { "\($0) " } ?? "")(\($0.index)) \
                        \(String(format: "%.4g", $0.score))
                        """
                    }.joined(separator: ", "))
        }
        if let output { print("wrote \(output): \([rows.count] + shape)") }
    }

    /// --labels, ImageNet-1k's names for a 1000-class model, or none.
    private func classNames(_ net: DenseNet) throws -> [String]? {
        if let labels {
            let text = try CommandFailure.about(labels) {
                // One name per class: a few kilobytes for ImageNet's 1000.
                String(decoding: try FileMapping.contents(path: labels, maximumBytes: 16 << 20), as: UTF8.self)
            }
            let names = text.split(separator: "\n", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            let trimmed = names.last == "" ? Array(names.dropLast()) : names
            guard trimmed.count == net.classes else {
                throw CommandFailure(
                    file: labels, message: "\(trimmed.count) names, but the model has \(net.classes) classes")
            }
            return trimmed
        }
        return net.classes == 1000 ? ImageNetClasses.names : nil
    }

    private func name(_ index: Int, _ names: [String]?) -> String? {
        names.flatMap { index < $0.count ? $0[index] : nil }
    }
}

func milliseconds(_ duration: Duration) -> Double {
    let components = duration.components
    return Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15
}
