import ArgumentParser
import DenseKit
import DenseKitGraph
import DenseKitImages
import Foundation

/// How images become a model's input: a preset, optionally changed step by step.
struct PreprocessingOptions: ParsableArguments {
    @Option(help: "The framework pipeline to reproduce.") var preset: Preprocessing.Preset?
    @Option(help: "The model's input side (default 224; the presets' resize scales with it).") var size: Int?
    @Option(help: "Resize: N (the shorter side to N) or WxH (the whole image); 'none' to keep the size.") var resize:
        String?
    @Option(help: "Resize filter: PIL's bilinear (antialiased) or nearest.") var filter: ImageResize.Filter?
    @Option(help: "Crop the centre NxN ('none' for no crop).") var crop: String?
    @Option(help: "Divide each 8-bit value by this first (255: values in [0, 1]; 1: no scaling).") var divisor: Float?
    @Option(help: "Per-channel mean to subtract, three comma-separated values in the output's channel order.") var mean:
        String?
    @Option(help: "Per-channel std to divide by, three comma-separated values.") var std: String?
    @Flag(help: "BGR channel order (Caffe's).") var bgr = false
    @Flag(help: "RGB channel order (to undo a preset's BGR).") var rgb = false

    /// Every flag checked (the parser calls this before any command runs, so a wrong value is refused
    /// before a model is read); whether a preset is needed is for the command to say.
    func validate() throws {
        _ = try pipeline(preset ?? .torchvision, defaultSize: nil)
    }

    /// Refuses images without `--preset` (from a command's `validate()`, before any model is read).
    func requirePreset() throws {
        guard preset == nil else { return }
        throw ValidationError(
            """
            --preset is required with images: \
            \(Preprocessing.Preset.allCases.map(\.rawValue).joined(separator: ", ")).
            """
        )
    }

    /// The pipeline; `defaultSize`: the model's input side when it fixes one (else 224).
    func preprocessing(defaultSize: Int? = nil) throws -> Preprocessing {
        try requirePreset()
        return try pipeline(preset ?? .torchvision, defaultSize: defaultSize)
    }

    /// The pipeline for images run through `models` (the first one's input side by default). A model that
    /// preprocesses its own input gets the preset's scaling on top: said on stderr, with the flags that
    /// give it pixels.
    func preprocessing(for models: [(net: DenseNet, file: String)]) throws -> Preprocessing {
        let pipeline = try preprocessing(defaultSize: models.first?.net.input.height)
        let scales =
            pipeline.divisor != 1 || pipeline.mean.contains(where: { $0 != 0 })
            || pipeline.std.contains(where: { $0 != 1 })
        for (net, file) in models where scales {
            guard let transform = net.inputTransform else { continue }
            log(
                """
                note: \(file) applies its own preprocessing (\(transform.summary) per channel: \
                \(transform.origin.joined(separator: ", "))); the preset's scaling comes on top of it \
                (--divisor 1 --mean 0,0,0 --std 1,1,1 give it 0..255 pixels)
                """)
        }
        return pipeline
    }

    private func pipeline(_ preset: Preprocessing.Preset, defaultSize: Int?) throws -> Preprocessing {
        let side = 1...DenseNet.Limits.inputSide
        if let size, !side.contains(size) {
            throw ValidationError("--size must be between 1 and \(DenseNet.Limits.inputSide).")
        }
        var preprocessing = Preprocessing(preset, size: size ?? defaultSize ?? 224)
        if let resize {
            let parts = resize.split(separator: "x").map { Int($0) }
            if resize == "none" {
                preprocessing.resize = .none
            } else if parts.count == 1, let length = parts[0], side.contains(length) {
                preprocessing.resize = .shorterSide(length)
            } else if parts.count == 2, let width = parts[0], let height = parts[1], side.contains(width),
                side.contains(height)
            {
                preprocessing.resize = .exact(width: width, height: height)
            } else {
                throw ValidationError(
                    "--resize takes N, WxH (each from 1 to \(DenseNet.Limits.inputSide)) or none, not '\(resize)'.")
            }
        }
        if let filter { preprocessing.filter = filter }
        if let crop {
            if crop == "none" {
                preprocessing.crop = nil
            } else if let cropSide = Int(crop), cropSide > 0 {
                preprocessing.crop = cropSide
            } else {
                throw ValidationError("--crop takes N or none, not '\(crop)'.")
            }
        }
        if let divisor {
            guard divisor.isFinite, divisor > 0 else { throw ValidationError("--divisor must be positive.") }
            preprocessing.divisor = divisor
        }
        func triple(_ text: String?, _ flag: String) throws -> [Float]? {
            guard let text else { return nil }
            let values = text.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
            guard values.count == 3, values.allSatisfy(\.isFinite) else {
                throw ValidationError("\(flag) takes three comma-separated numbers, not '\(text)'.")
            }
            return values
        }
        if let meanValues = try triple(mean, "--mean") { preprocessing.mean = meanValues }
        if let stdValues = try triple(std, "--std") {
            guard stdValues.allSatisfy({ $0 != 0 }) else { throw ValidationError("--std values must not be 0.") }
            preprocessing.std = stdValues
        }
        if bgr && rgb { throw ValidationError("--bgr and --rgb exclude each other.") }
        if bgr { preprocessing.bgr = true }
        if rgb { preprocessing.bgr = false }
        return preprocessing
    }

    /// "torchvision: resize shorter side 256 bilinear, crop 224, /255, mean ..., NCHW" for the text output.
    static func describe(_ preprocessing: Preprocessing) -> String {
        let resize: String
        switch preprocessing.resize {
        case .none: resize = "no resize"
        case .shorterSide(let length): resize = "shorter side to \(length) (\(preprocessing.filter.rawValue))"
        case .exact(let width, let height): resize = "resize to \(width)x\(height) (\(preprocessing.filter.rawValue))"
        }
        let list = { (v: [Float]) in v.map { String(format: "%g", $0) }.joined(separator: ", ") }
        return
            """
            \(resize), \(preprocessing.crop.map { "centre crop \($0)" } ?? "no crop"), \
            /\(String(format: "%g", preprocessing.divisor)), \
            mean (\(list(preprocessing.mean))), std (\(list(preprocessing.std))), \(preprocessing.bgr ? "BGR" : "RGB")
            """
    }
}

/// Expands IMAGES (files and folders) into files, naming a missing one.
func imageFiles(_ paths: [String]) throws -> [String] {
    var files: [String] = []
    for path in paths { files += try CommandFailure.about(path) { try ImageDecoder.files(at: path) } }
    guard !files.isEmpty else {
        throw CommandFailure(file: paths.joined(separator: " "), message: "no JPEG or PNG images (.jpg, .jpeg, .png)")
    }
    return files
}

extension CommandFailure {
    init(_ failure: ImageSet.Failure) { self.init(file: failure.file, message: failure.description) }
}

/// A progress bar on stderr when it is a terminal (nothing otherwise, so scripts see only results).
final class ProgressBar {
    let label: String, unit: String
    let enabled = isatty(STDERR_FILENO) != 0
    private var shown = false

    init(label: String, unit: String) {
        self.label = label
        self.unit = unit
    }

    func update(_ done: Int, _ total: Int) {
        guard enabled, total > 0 else { return }
        let width = 30
        let filled = min(width, done * width / total)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandle.standardError.write(Data("\r\(label): [\(bar)] \(done)/\(total) \(unit)".utf8))
        shown = true
    }

    func finish() {
        if shown { FileHandle.standardError.write(Data("\n".utf8)) }
        shown = false
    }
}

/// Runs `body` with a progress bar, finished whatever happens; an image that cannot be used is
/// blamed on its file, anything else on `file` (the model).
@discardableResult
func withProgress<T>(_ label: String, blaming file: String, _ body: (ProgressBar) throws -> T) throws -> T {
    let bar = ProgressBar(label: label, unit: "images")
    defer { bar.finish() }
    do {
        return try body(bar)
    } catch let failure as ImageSet.Failure {
        throw CommandFailure(failure)
    } catch let failure as CommandFailure {
        throw failure
    } catch {
        throw CommandFailure(file: file, message: "\(error)")
    }
}
