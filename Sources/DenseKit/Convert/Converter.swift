import DenseKitExecute
import DenseKitFormats
import DenseKitGraph
import Foundation

/// `densekit convert`, a pipeline: import -> verify -> execute -> encode with the target's
/// `ModelWriter` -> write a temporary file beside the output -> read it back through `ModelLoader`
/// (the same validated import as any file) -> execute again -> compare -> rename into place.
/// Nothing is left at the destination (or beside it) unless every step holds.
public struct Converter {
    /// How far a reduced-precision file may move the output (layer-scaled, as in `diff`), with
    /// every sample's top-1 class unchanged. float32 files must be bit-identical.
    public static func tolerance(for dtype: DType) -> Float {
        switch dtype {
        case .f32: return 0
        case .f16: return 1e-2
        case .bf16: return 5e-2
        }
    }

    public struct Validation: Sendable {
        public var maxAbs: Float
        public var maxRel: Float
        public var cosine: Float
        public var top1Agreement: Double
        public var bitIdentical: Bool
        public var tolerance: Float
    }

    public struct Outcome: Sendable {
        /// The writer's format (`dnk`, ...).
        public var format: String
        /// What the target adds, drops or changes.
        public var conventions: [Convention]
        public var bytes: Int
        public var rawTensorBytes: Int
        public var dtype: DType
        /// True when the file keeps the model's int8 codes (its float tensors are `dtype`).
        public var keepsInt8 = false
        public var report: Verifier.Report
        public var validation: Validation
        public var sourceSHA256: String
    }

    public enum Refusal: Error, CustomStringConvertible {
        case deviations(Verifier.Report)
        case validation(Validation, DType)

        public var description: String {
            switch self {
            case .deviations(let report):
                return
                    """
                    does not match \(report.spec.name) (\(report.deviations.count) \
                    deviation\(report.deviations.count == 1 ? "" : "s"), first: \
                    \(report.deviations.first?.description ?? "-")); run `densekit verify` for all, or pass \
                    --accept-deviations
                    """
            case .validation(let validation, let dtype):
                if dtype == .f32 {
                    return
                        "the written file does not reproduce the source's output bit for bit "
                        + "(max abs \(validation.maxAbs))"
                }
                return
                    """
                    \(dtype.rawValue) moves the output by \(validation.maxRel) of its scale \
                    (limit \(validation.tolerance)), top-1 \
                    agreement \(Int(validation.top1Agreement * 100))%
                    """
            }
        }
    }

    public var dtype: DType = .f32
    /// The output format.
    public var writer: any ModelWriter = DNKModelWriter()
    public var acceptDeviations = false
    /// Write an int8 model's weights as their float values, every activation float (`--dequantize`).
    public var dequantize = false
    public var threads = 1
    public var mode = ConvolutionMode.default
    public var progress: (String) -> Void = { _ in }

    public init() {}

    /// `input` (NCHW, with batch and size) validates the conversion; nil uses a seeded probe image.
    public func convert(source path: String, to output: String, input: ModelInput? = nil) throws -> Outcome {
        progress("importing \(path)")
        return try convert(try ModelLoader.load(path: path), source: path, to: output, input: input)
    }

    /// Converts `net`, already imported from the file at `path`.
    public func convert(_ net: DenseNet, source path: String, to output: String, input: ModelInput? = nil) throws
        -> Outcome
    {
        if AtomicFile.sameFile(path, output) {
            throw WriteError.destination(
                problem: "is the source file: convert writes a new file, never over its source")
        }
        try AtomicFile.checkDestination(output)
        // An int8 model is written dequantised only when asked: it is then another model, whose outputs the
        // conventions compare with the int8 model's.
        var int8: DenseNet? = nil
        var net = net
        if let summary = net.quantizationSummary, dequantize || !writer.keepsQuantization {
            guard dequantize else {
                throw UnsupportedTarget(
                    writer.format,
                    "the model is int8 (\(summary)); pass --dequantize to write its weights as floats (or write "
                        + ".dnk or ONNX, which keep it int8)")
            }
            int8 = net
            net = net.dequantized()
        }
        progress("verifying the structure")
        let report = try Verifier().verify(net)
        if !report.matches && !acceptDeviations { throw Refusal.deviations(report) }
        // What the target makes of the model (or that it cannot hold it), before any work is done.
        var (prepared, conventions) = try writer.prepare(net, dtype: dtype)
        if net.head.outputKeepsMapAxes {
            conventions.append(
                Convention(
                    .changes, "output shape",
                    "[N, \(net.classes)] where the source's was [N, \(net.classes), 1, 1] (the same values)"))
        }
        let executor = try Executor(net, threads: threads, mode: mode)
        let size = (height: net.input.height ?? report.spec.inputSize, width: net.input.width ?? report.spec.inputSize)
        // The workspace is sized (and refused if too large) before the probe image is made.
        if input == nil { try executor.reserve(height: size.height, width: size.width) }
        let probeInput = input ?? probe(channels: net.input.channels, height: size.height, width: size.width)
        progress("running the source model")
        let reference = try executor.run(
            probeInput.values, batch: probeInput.batch, height: probeInput.height, width: probeInput.width)
        if let int8 {
            progress("running the int8 model")
            let quantized = try Executor(int8, threads: threads, mode: mode).run(
                probeInput.values, batch: probeInput.batch, height: probeInput.height, width: probeInput.width)
            let moved = compare(reference, quantized, classes: quantized.count / max(probeInput.batch, 1))
            conventions.append(
                Convention(
                    .changes, "int8",
                    """
                    dequantised (--dequantize): each weight written as its float value, (code - zero point) x \
                    scale, and every activation float; on the validation input the output moves by \
                    \(moved.maxRel) of its scale from the int8 model's (cosine \(moved.cosine), top-1 agreement \
                    \(Int(moved.top1Agreement * 100))%)
                    """))
        }
        progress("hashing the source file")
        let sha = try SourceFingerprint.sha256(ofFile: path)
        let provenance = Provenance(
            sourceFile: URL(fileURLWithPath: path).lastPathComponent, sourceSHA256: sha,
            sourceFormat: net.source.format.rawValue, producer: net.source.producer)
        progress("writing \(dtype.rawValue) weights as \(writer.format)")
        let bytes = try writer.encode(prepared, dtype: dtype, provenance: provenance)
        let temporary = try AtomicFile.writeTemporary(bytes, beside: output)
        do {
            progress("reading the written file back and running it")
            var written = try ModelLoader.load(path: temporary)
            // A target that cannot hold the model's input transform drops it (a convention tells the
            // user to apply it first): the written file is checked on input so transformed.
            if written.inputTransform == nil { written.inputTransform = net.inputTransform }
            let outputs = try Executor(written, threads: threads, mode: mode).run(
                probeInput.values, batch: probeInput.batch, height: probeInput.height, width: probeInput.width)
            let validation = compare(outputs, reference, classes: reference.count / max(probeInput.batch, 1))
            let ok =
                dtype == .f32
                ? validation.bitIdentical : validation.maxRel <= validation.tolerance && validation.top1Agreement == 1
            guard ok else { throw Refusal.validation(validation, dtype) }
            try AtomicFile.commit(temporary, to: output)
            let raw = CanonicalLayout.tensors(of: net).reduce(0) { $0 + $1.1.count * 4 }
            var outcome = Outcome(
                format: writer.format, conventions: conventions, bytes: bytes.count, rawTensorBytes: raw, dtype: dtype,
                report: report, validation: validation, sourceSHA256: sha)
            outcome.keepsInt8 = net.isQuantized
            return outcome
        } catch {
            AtomicFile.discard(temporary)
            throw error
        }
    }

    /// `classes`: values per image (top-1 is taken over each image's whole output).
    private func compare(_ outputs: [Float], _ reference: [Float], classes: Int) -> Validation {
        let metrics = outputs.withUnsafeBufferPointer { written in
            reference.withUnsafeBufferPointer { ErrorMetrics(written, $0) }
        }
        let samples = reference.count / max(classes, 1)
        var agree = 0
        for s in 0..<samples {
            let written = outputs[(s * classes)..<((s + 1) * classes)]
            let expected = reference[(s * classes)..<((s + 1) * classes)]
            if ModelDiff.top(written, 1) == ModelDiff.top(expected, 1) { agree += 1 }
        }
        return Validation(
            maxAbs: metrics.maxAbs, maxRel: metrics.maxRel, cosine: metrics.cosine,
            top1Agreement: Double(agree) / Double(max(samples, 1)),
            bitIdentical: outputs.elementsEqual(reference) { $0.bitPattern == $1.bitPattern },
            tolerance: Self.tolerance(for: dtype))
    }

    /// A fixed pseudo-random image, values in [-2, 2].
    private func probe(channels: Int, height: Int, width: Int) -> ModelInput {
        var state: UInt64 = 0x5DEE_CE66_D1CE_4E5B
        let values = (0..<(channels * height * width)).map { _ -> Float in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) / Float(1 << 24) * 4 - 2
        }
        return ModelInput(batch: 1, height: height, width: width, values: values)
    }
}
