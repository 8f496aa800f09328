import DenseKit
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

extension ConvertTargetTests {
    /// A model's own Rescaling (Keras 3 and tf_keras, before a nested backbone) through every target:
    /// ONNX keeps it as Mul and Add nodes and TFLite as MUL and ADD operators (onnxruntime and TensorFlow Lite's
    /// interpreter on raw 0..255 pixels give Keras's output; DenseKit reads it back), `.dnk`
    /// records it (version 3.0; `run` on the pixels gives Keras's output); the torchvision and Keras weight
    /// layouts cannot hold it, and `convert` says so: their frameworks, fed the pixels rescaled as the
    /// convention says, give Keras's output.
    @Test func anInputTransformIsKeptByONNXAndDNKAndNamedWhereATargetCannotHoldIt() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let pixels = Fixtures.path("input-64-pixels-nhwc.npy")
        // Rescaling(1 / 127.5, offset=-1), the fixture script's, applied here by hand.
        let raw = try NPY.read(path: pixels)
        let scaledPath = folder.appendingPathComponent("scaled.npy").path
        try NPY.write(
            NPY.Array(shape: raw.shape, values: raw.values.map { $0 * Float(1 / 127.5) - 1 }), to: scaledPath)
        var checks: [Check] = []
        for prefix in ["keras3-tiny-rescaling", "keras2-tiny-rescaling"] {
            let file = Fixtures.path(prefix + (prefix.hasPrefix("keras3") ? ".keras" : ".h5"))
            let reference = Fixtures.path(prefix + ".out.npy")
            for (target, framework) in Self.frameworkTargets {
                let name = "\(prefix)\(target.fileExtension)"
                let parsed = try Self.convert(file, name, in: folder)
                let dropped = ((parsed["conventions"] as? [[String: Any]]) ?? []).filter {
                    $0["change"] as? String == "drops" && $0["subject"] as? String == "input transform"
                }
                let kept = target == .onnx || target == .tflite
                if kept {
                    let written = try ModelLoader.load(path: folder.appendingPathComponent(name).path)
                    #expect(written.inputTransform?.summary == "x * 0.007843138 + -1.0", "\(name)")
                }
                #expect(dropped.count == (kept ? 0 : 1), "\(name): \(parsed["conventions"] ?? "")")
                if let detail = dropped.first?["detail"] as? String {
                    #expect(
                        detail.contains("apply the model's own x * 0.007843138 + -1.0 per input channel"), "\(detail)")
                }
                let source = Source(
                    file: file, reference: reference, input: kept ? pixels : scaledPath, layout: "nhwc",
                    dense: [(3, "linear")])
                checks.append(
                    Self.check(source, target, framework, file: folder.appendingPathComponent(name).path, in: folder))
            }
            let dnk = folder.appendingPathComponent(prefix + ".dnk").path
            try Self.convert(file, prefix + ".dnk", in: folder)
            let header = try Data(contentsOf: URL(fileURLWithPath: dnk)).prefix(12)
            #expect(Array(header[8..<12]) == [3, 0, 0, 0], "a 3.0 file: older readers would drop the transform")
            let out = dnk + ".out.npy"
            let run = try densekit(["run", dnk, "--input", pixels, "--output", out])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(relativeError(try NPY.read(path: out).values, try NPY.read(path: reference).values) <= 1e-4)
            let written = try ModelLoader.load(path: dnk)
            #expect(written.inputTransform == (try ModelLoader.load(path: file)).inputTransform)
        }
        try Self.verify(checks, in: folder)
    }
}
