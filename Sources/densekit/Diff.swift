import ArgumentParser
import DenseKit
import DenseKitExecute
import DenseKitFormats
import DenseKitGraph
import DenseKitImages
import Foundation

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run two copies of a model on one input and show where they diverge first, layer by layer.",
        discussion: """
            A layer is within tolerance when every |a - b| <= atol + rtol * max|b| over that layer \
            (defaults: atol \(Tolerance.defaultAbsolute), rtol \(Tolerance.defaultRelative), suited to float32 \
            through a deep net). Exit 0 within tolerance, 1 beyond it, 2 for an unusable file or two \
            models that are not the same architecture.
            """)

    @Argument(help: ArgumentHelp("The first model (the input's default layout is its own).", valueName: "a"))
    var modelA: String
    @Argument(help: ArgumentHelp("The second model, the reference side for relative errors.", valueName: "b"))
    var modelB: String
    @OptionGroup var inputs: InputOptions
    @Option(help: "Images per batch of a dataset diff.") var batch: Int = 16
    @Option(help: "Write the per-image table of a dataset diff as CSV.") var csv: String?
    @Flag(help: "Go on past images that cannot be read, and list them.") var skipBad = false
    @OptionGroup var execution: ExecutionOptions
    @Option(help: "Absolute tolerance.") var atol: Float = Tolerance.defaultAbsolute
    @Option(help: "Relative tolerance (to the layer's largest magnitude).") var rtol: Float = Tolerance.defaultRelative
    @OptionGroup var rendering: OutputOptions
    @Option(help: "Write a self-contained HTML report with a chart of the error per layer.") var report: String?
    @Flag(
        help: ArgumentHelp(
            "With a float model first and its int8 model second: rank the int8 model's layers by the output error "
                + "each causes when it alone runs quantised."))
    var sensitivity = false

    var input: String? { inputs.input }
    var images: [String] { inputs.images }
    var preprocessing: PreprocessingOptions { inputs.preprocessing }
    var json: Bool { rendering.json }

    func validate() throws {
        guard atol >= 0, rtol >= 0, atol.isFinite, rtol.isFinite else {
            throw ValidationError("--atol and --rtol must be finite and >= 0.")
        }
        try inputs.requireOne()
        guard (1...1024).contains(batch) else { throw ValidationError("--batch must be between 1 and 1024.") }
        if csv != nil && images.isEmpty { throw ValidationError("--csv is for a dataset diff (--images).") }
    }

    func run() throws {
        let netA = try loadModel(modelA)
        let netB = try loadModel(modelB)
        let analysis = try sensitivity ? sensitivityAnalysis(netA, netB) : nil
        let diff = try CommandFailure.about(modelB) {
            try ModelDiff(
                netA, netB, tolerance: Tolerance(absolute: atol, relative: rtol), threads: execution.threadCount,
                mode: execution.mode)
        }
        guard let input else { return try datasetDiff(diff, analysis, netA, netB) }
        let array = try CommandFailure.about(input) { try NPY.read(path: input) }
        let layout = execution.inputLayout ?? netA.input.layout
        let modelInput = try CommandFailure.about(input) { try ModelInput(array, layout: layout, for: netA) }
        _ = try CommandFailure.about(input) { try ModelInput(array, layout: layout, for: netB) }
        let result = try CommandFailure.about(modelA) {
            try diff.run(modelInput.values, batch: modelInput.batch, height: modelInput.height, width: modelInput.width)
        }
        let entries = try analysis.map { analysis in
            let bar = ProgressBar(label: "sensitivity", unit: "layers")
            defer { bar.finish() }
            return try CommandFailure.about(modelB) {
                try analysis.run(
                    modelInput.values, batch: modelInput.batch, height: modelInput.height, width: modelInput.width
                ) { bar.update($0, analysis.layers.count * modelInput.batch) }
            }
        }
        if let report {
            try CommandFailure.about(report) {
                let page = DiffHTML(result: result, nameA: modelA, nameB: modelB, sensitivity: entries)
                try AtomicFile.write(Data(page.html.utf8), to: report)
            }
        }
        if json {
            printJSON(DiffJSONReport(result, sensitivity: entries))
        } else {
            let text = DiffText(nameA: modelA, nameB: modelB)
            print(text.comparison(result))
            if let entries { print(text.sensitivity(entries)) }
        }
        if !result.withinTolerance { throw ExitCode(1) }
    }

    // MARK: dataset diff

    /// The sensitivity analysis of `--sensitivity`, its refusal blamed on the file at fault.
    private func sensitivityAnalysis(_ netA: DenseNet, _ netB: DenseNet) throws -> QuantizationSensitivity {
        do {
            return try QuantizationSensitivity(float: netA, int8: netB)
        } catch let error as QuantizationSensitivity.Error {
            throw CommandFailure(file: error == .floatIsQuantized ? modelA : modelB, message: error.description)
        } catch {
            throw CommandFailure(file: modelB, message: "\(error)")
        }
    }

    private func datasetDiff(
        _ diff: ModelDiff, _ analysis: QuantizationSensitivity?, _ netA: DenseNet, _ netB: DenseNet
    ) throws {
        let set = ImageSet(
            files: try imageFiles(images),
            preprocessing: try preprocessing.preprocessing(for: [(netA, modelA), (netB, modelB)]),
            skipBad: skipBad)
        let report = try withProgress("diff", blaming: modelA) { bar in
            try DatasetDiff.run(diff, images: set, batchSize: batch, sensitivity: analysis) { bar.update($0, $1) }
        }
        for f in report.skipped { log("skipped \(f.file): \(f.description)") }
        if let csv {
            try CommandFailure.about(csv) { try AtomicFile.write(Data(DiffCSV.table(report).utf8), to: csv) }
        }
        if let path = self.report {
            try CommandFailure.about(path) {
                try AtomicFile.write(
                    Data(
                        DiffHTML(
                            result: report.result, nameA: modelA, nameB: modelB, images: report.images,
                            sensitivity: report.sensitivity
                        ).html.utf8),
                    to: path)
            }
        }
        if json {
            printJSON(DiffJSONReport(report))
        } else {
            let text = DiffText(nameA: modelA, nameB: modelB)
            print(text.dataset(report))
            print(text.comparison(report.result))
            if let entries = report.sensitivity { print(text.sensitivity(entries)) }
        }
        if !report.result.withinTolerance { throw ExitCode(1) }
    }
}
