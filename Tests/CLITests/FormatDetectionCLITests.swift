import DenseKit
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// Files are told apart by their content, never their name: a file DenseKit does not read is
/// refused as what it looks like, whatever it is called, through every command.
@Suite struct FormatDetectionCLITests {
    @Test(arguments: [
        ("input-64.npy", "a NumPy .npy array"),
        ("tv-tiny-legacy-opset17.meta.json", "JSON text"),
    ])
    func foreignFilesAreNamedByWhatTheyAre(_ fixture: String, _ what: String) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // Under an ONNX and a Keras name too: the name does not matter.
        for name in [fixture, "model.onnx", "model.h5", "model.keras", "model.dnk"] {
            let path = folder.appendingPathComponent(name).path
            try FileManager.default.copyItem(atPath: Fixtures.path(fixture), toPath: path)
            let message = "not a model file DenseKit reads (looks like \(what))"
            for args in [
                ["inspect", path], ["verify", path],
                ["convert", path, "-o", folder.appendingPathComponent("out.dnk").path],
            ] {
                let outcome = try densekit(args)
                #expect(
                    outcome.status == 2 && outcome.stderr == "error: \(path): \(message)\n",
                    "\(args): \(outcome.stderr)")
            }
            try FileManager.default.removeItem(atPath: path)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    @Test func versionIsPrinted() throws {
        let outcome = try densekit(["--version"])
        #expect(outcome.status == 0 && outcome.stdout == "\(DenseKitVersion.string)\n")
        #expect(DenseKitVersion.string.split(separator: ".").count == 3)
    }
}
