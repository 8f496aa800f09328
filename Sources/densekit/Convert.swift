import ArgumentParser
import DenseKit
import DenseKitExecute
import DenseKitFormats
import DenseKitGraph
import DenseKitImages
import Foundation

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            """
            Convert a model to .dnk, ONNX, safetensors (torchvision names) or Keras weights, validated by running \
            it before and after.
            """,
        discussion: """
            The format comes from OUT's extension (\(ConversionTarget.list)) or --to. The output says what \
            the target adds, drops or changes (an activation a weights file cannot store, the BatchNorm \
            epsilon, the input layout) and which model to load it into. Imports, verifies (a model that \
            matches no paper architecture is refused unless --accept-deviations), runs the executor on \
            --input or a seeded probe image, writes a temporary file beside OUT, reads it back, runs it again \
            and compares: f32 must be bit-identical; f16 may move the output by at most \
            \(Converter.tolerance(for: .f16)) and bf16 by \(Converter.tolerance(for: .bf16)) of its scale, \
            with every top-1 class unchanged. Only then is it renamed into place. Exit 1 when refused \
            (nothing written).
            """)

    @Argument(help: "The source model.") var model: String
    @Option(name: .shortAndLong, help: "The file to write; its extension names the format unless --to does.")
    var output: String
    @Option(help: "The format (default: from OUT's extension).") var to: ConversionTarget?
    @Option(help: "Weight dtype (.dnk and .safetensors; f16 also for .tflite; the others write f32).")
    var dtype: DType = .f32
    @Option(
        help:
            """
            ONNX opset, \(ONNXModelWriter.opsets.lowerBound) to \(ONNXModelWriter.opsets.upperBound) (default \
            \(ONNXModelWriter.defaultOpset)).
            """
    ) var opset: Int?
    @Flag(help: "ONNX: fold the BatchNorms that follow a conv (stem, bottlenecks) into it, as torch's exporter does.")
    var foldBn = false
    /// What the written file is validated on (default: a seeded probe image).
    @OptionGroup var inputs: InputOptions
    @OptionGroup var execution: ExecutionOptions
    @Flag(help: "Write even when the model deviates from every paper architecture.") var acceptDeviations = false
    @Flag(help: "An int8 model: write its weights as their float values, every activation float.")
    var dequantize = false
    @OptionGroup var rendering: OutputOptions
    var input: String? { inputs.input }
    var images: [String] { inputs.images }
    var preprocessing: PreprocessingOptions { inputs.preprocessing }
    var json: Bool { rendering.json }

    func run() throws {
        let target = try CommandFailure.about(output) { try ConversionTarget.resolve(output: output, to: to) }
        if target != .onnx && (opset != nil || foldBn) {
            throw CommandFailure(
                file: output, message: "--opset and --fold-bn are for ONNX output, not \(target.name)")
        }
        var options = ConversionTarget.Options()
        if let opset { options.opset = opset }
        options.foldBatchNorm = foldBn
        var converter = Converter()
        converter.writer = target.writer(options)
        converter.dtype = dtype
        converter.acceptDeviations = acceptDeviations
        converter.dequantize = dequantize
        converter.threads = execution.threadCount
        converter.mode = execution.mode
        // Progress for people watching a terminal; scripts reading stderr see only the outcome.
        if isatty(STDERR_FILENO) != 0 { converter.progress = { log("convert: \($0)") } }
        let net = try loadModel(model)
        var validationInput: ModelInput? = nil
        if let input {
            let array = try CommandFailure.about(input) { try NPY.read(path: input) }
            validationInput = try CommandFailure.about(input) {
                try ModelInput(array, layout: execution.inputLayout, for: net)
            }
        } else if !images.isEmpty {
            validationInput = try validationImages(net)
        }
        do {
            let outcome = try converter.convert(net, source: model, to: output, input: validationInput)
            report(outcome)
        } catch let refusal as Converter.Refusal {
            if json {
                printJSON(ConversionReport(refusal, format: target.name, dtype: dtype))
            }
            log("convert refused: \(model): \(refusal.description); nothing written")
            throw ExitCode(1)
        } catch let e as WriteError {
            throw CommandFailure(file: output, message: e.description)
        } catch {
            throw CommandFailure(file: model, message: "\(error)")
        }
    }

    private func report(_ outcome: Converter.Outcome) {
        if json {
            printJSON(ConversionReport(outcome, output: output))
        } else {
            print(ConvertText.lines(outcome, output: output).joined(separator: "\n"))
        }
    }

    /// The images, preprocessed, as one validation batch.
    private func validationImages(_ net: DenseNet) throws -> ModelInput {
        let set = ImageSet(
            files: try imageFiles(images), preprocessing: try preprocessing.preprocessing(for: [(net, model)])
        )
        var batch: ModelInput? = nil
        try withProgress("convert", blaming: model) { _ in
            try set.forEachInput(size: .max) { _, x in batch = x }
        }
        guard let batch else {
            throw CommandFailure(file: images.joined(separator: " "), message: "no image could be read")
        }
        return batch
    }
}
