import Foundation

/// The Python environments `make venvs` builds (torch, onnxruntime; TensorFlow, tf_keras, Keras 3, TFLite),
/// used by the tests to load the files DenseKit writes in the frameworks they are for, through
/// `scripts/check_converted.py`. Python is a test-time tool only.
public enum Frameworks {
    public enum Framework: String, Sendable {
        case onnxruntime, torch
        case tfKeras = "tf_keras"
        case keras3
        /// TensorFlow Lite's interpreter (tf.lite.Interpreter).
        case tflite

        var venv: String { self == .onnxruntime || self == .torch ? "venv-torch" : "venv-tf" }
        /// Whether the framework takes and gives NHWC maps.
        public var nhwc: Bool { self == .tfKeras || self == .keras3 || self == .tflite }
    }

    /// One file to load and run: `input` (.npy, in `layout`) in, the framework's output written to `output`.
    public struct Case {
        public var file: String
        public var input: String
        public var layout: String
        public var output: String
        /// What to build for a weights file (see check_converted.py); empty for ONNX.
        public var model: [String: Any]

        public init(file: String, input: String, layout: String, output: String, model: [String: Any]) {
            self.file = file
            self.input = input
            self.layout = layout
            self.output = output
            self.model = model
        }
    }

    public enum Failure: Error, CustomStringConvertible {
        case noEnvironment(String)
        case failed(String, String)
        public var description: String {
            switch self {
            case .noEnvironment(let path): return "no Python environment at \(path): run `make venvs` (make test does)"
            case .failed(let framework, let log): return "\(framework) failed:\n\(log)"
            }
        }
    }

    /// The venvs' folder: $DENSEKIT_CACHE (the Makefile's CACHE) or ~/.cache/densekit.
    public static var cache: String {
        ProcessInfo.processInfo.environment["DENSEKIT_CACHE"]
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/densekit").path
    }

    /// Runs every case in one process of `framework`; throws (with the script's output) if any fails.
    public static func run(_ framework: Framework, _ cases: [Case], in folder: URL) throws {
        guard !cases.isEmpty else { return }
        let python = "\(cache)/\(framework.venv)/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else { throw Failure.noEnvironment(python) }
        let manifest = folder.appendingPathComponent("manifest-\(framework.rawValue).json")
        let object: [String: Any] = [
            "cases": cases.map {
                ["file": $0.file, "input": $0.input, "layout": $0.layout, "output": $0.output, "model": $0.model]
            }
        ]
        try JSONSerialization.data(withJSONObject: object).write(to: manifest)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [
            Fixtures.root.appendingPathComponent("scripts/check_converted.py").path, framework.rawValue, manifest.path,
        ]
        let log = folder.appendingPathComponent("log-\(framework.rawValue).txt")
        guard FileManager.default.createFile(atPath: log.path, contents: nil) else {
            throw Failure.failed(framework.rawValue, "cannot create \(log.path)")
        }
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        try handle.close()
        guard process.terminationStatus == 0 else {
            throw Failure.failed(
                framework.rawValue,
                String(decoding: (try? Data(contentsOf: log)) ?? Data(), as: UTF8.self).suffix(3000).description)
        }
    }
}
