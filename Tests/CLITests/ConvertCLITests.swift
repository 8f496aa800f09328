import DenseKit
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// `densekit convert` end to end: refusal, validation, nothing left behind, and running the result.
@Suite struct ConvertCLITests {
    @Test func tinyModelIsRefusedWithoutAcceptDeviations() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("m.dnk").path
        let outcome = try densekit(["convert", Fixtures.path("tv-tiny-legacy-opset17.onnx"), "-o", out, "--json"])
        #expect(outcome.status == 1)
        #expect(try outcome.json()["written"] as? Bool == false)
        #expect(outcome.stderr.contains("convert refused") && outcome.stderr.contains("--accept-deviations"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    /// The output may not be the source, however it is spelled (the same path, a hard link): the
    /// source is left as it was.
    @Test func theSourceIsNeverTheOutput() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = folder.appendingPathComponent("m.onnx").path
        try FileManager.default.copyItem(atPath: Fixtures.path("tv-tiny-legacy-opset17.onnx"), toPath: source)
        let link = folder.appendingPathComponent("link.onnx").path
        try FileManager.default.linkItem(atPath: source, toPath: link)
        let before = try Data(contentsOf: URL(fileURLWithPath: source))
        for output in [source, folder.path + "/./m.onnx", link] {
            let outcome = try densekit(["convert", source, "-o", output, "--accept-deviations"])
            #expect(
                outcome.status == 2 && outcome.stderr.split(separator: "\n").count == 1, "\(output): \(outcome.stderr)")
            #expect(outcome.stderr.hasPrefix("error: \(output): is the source file"), "\(outcome.stderr)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: source)) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == ["link.onnx", "m.onnx"])
    }

    @Test func convertedModelRunsBitIdentically() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("m.dnk").path
        let source = Fixtures.path("keras2-tiny.h5")
        let input = Fixtures.path("input-64-nhwc.npy")
        let outcome = try densekit(["convert", source, "-o", out, "--accept-deviations", "--input", input, "--json"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let parsed = try outcome.json()
        #expect(parsed["written"] as? Bool == true && parsed["dtype"] as? String == "f32")
        #expect((parsed["validation"] as? [String: Any])?["bitIdentical"] as? Bool == true)
        #expect(outcome.stderr.isEmpty)  // progress only when stderr is a terminal
        let pathA = folder.appendingPathComponent("a.npy").path
        let pathB = folder.appendingPathComponent("b.npy").path
        #expect(try densekit(["run", source, "--input", input, "--output", pathA]).status == 0)
        #expect(try densekit(["run", out, "--input", input, "--output", pathB]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: pathA)) == Data(contentsOf: URL(fileURLWithPath: pathB)))
        let inspect = try densekit(["inspect", out])
        #expect(inspect.stdout.contains("dnk (densekit \(DenseKitVersion.string) from keras-h5 (keras 2."))
        #expect(try densekit(["diff", source, out, "--input", input]).status == 0)
    }

    /// A write cut short (here by a file-size limit, as a full disk would) is one error line and
    /// leaves nothing behind, for every command that writes a file.
    @Test func aWriteCutShortLeavesNothingBehind() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = Fixtures.path("tv-tiny-legacy-opset17.onnx")
        let input = Fixtures.path("input-64.npy")
        let dnk = folder.appendingPathComponent("m.dnk").path
        let report = folder.appendingPathComponent("r.html").path
        let outputPath = folder.appendingPathComponent("y.npy").path
        // The outputs are larger than one block (512 or 1024 bytes): every write hits the limit.
        for (args, file) in [
            (["convert", model, "-o", dnk, "--accept-deviations"], dnk),
            (["diff", model, model, "--input", input, "--report", report], report),
        ] {
            let outcome = try densekit(args, fileSizeLimit: 1)
            #expect(outcome.status == 2, "\(args): \(outcome.stderr)")
            #expect(
                outcome.stderr.hasPrefix("error: \(file): cannot write") && outcome.stderr.contains("File too large"),
                "\(outcome.stderr)"
            )
            #expect(outcome.stderr.split(separator: "\n").count == 1)
        }
        let full = Fixtures.full.map { "\($0)/densenet121-legacy-opset17.onnx" }
        if let full, FileManager.default.fileExists(atPath: full) {
            let outcome = try densekit(
                ["run", full, "--input", "\(Fixtures.full!)/input-224.npy", "--output", outputPath], fileSizeLimit: 1)
            #expect(
                outcome.status == 2 && outcome.stderr.hasPrefix("error: \(outputPath): cannot write"),
                "\(outcome.stderr)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    @Test func failuresLeaveNothingBehind() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let outcome = try densekit([
            "convert", Fixtures.path("tv-tiny-legacy-opset17.onnx"), "-o", "/nonexistent-dir/m.dnk",
            "--accept-deviations",
        ])
        #expect(outcome.status == 2)
        #expect(outcome.stderr.hasPrefix("error: /nonexistent-dir/m.dnk: cannot create a file"))
        let garbage = folder.appendingPathComponent("g.onnx").path
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: garbage))
        let out = folder.appendingPathComponent("m.dnk").path
        let garbageRun = try densekit(["convert", garbage, "-o", out])
        #expect(garbageRun.status == 2 && garbageRun.stderr.hasPrefix("error: \(garbage): "))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["g.onnx"])
        let bad = try densekit(["convert", Fixtures.path("tv-tiny-legacy-opset17.onnx"), "-o", out, "--dtype", "f8"])
        #expect(bad.status == 2 && bad.stderr.contains("--dtype"))
    }
}
