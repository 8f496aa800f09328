import DenseKit
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

extension ConvertTargetTests {
    /// The ONNX model zoo's layout (opset 7) to every target, each loaded in its framework (onnxruntime,
    /// torch, tf_keras, Keras 3) and run to onnxruntime's output of the zoo file; every target says it
    /// gives [N, 10] where the file declared [N, 10, 1, 1].
    @Test func theZooLayoutReachesEveryTarget() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = Source(
            file: Fixtures.path("tv-tiny-zoo-opset7.onnx"), reference: Fixtures.path("tv-tiny-zoo-opset7.out.npy"),
            input: Fixtures.path("input-64-one.npy"), layout: "nchw", dense: [(10, "linear")])
        var checks: [Check] = []
        for (target, framework) in Self.frameworkTargets {
            let name = "zoo\(target.fileExtension)"
            let parsed = try Self.convert(source.file, name, in: folder)
            #expect(
                ((parsed["conventions"] as? [[String: Any]]) ?? []).contains {
                    $0["subject"] as? String == "output shape"
                        && $0["detail"] as? String == "[N, 10] where the source's was [N, 10, 1, 1] (the same values)"
                }, "\(name): \(parsed["conventions"] ?? "")")
            checks.append(
                Self.check(source, target, framework, file: folder.appendingPathComponent(name).path, in: folder))
        }
        try Self.verify(checks, in: folder)
    }
}
