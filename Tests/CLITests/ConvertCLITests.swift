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
        let r = try densekit(["convert", Fixtures.path("tv-tiny-legacy-opset17.onnx"), "-o", out, "--json"])
        #expect(r.status == 1)
        #expect(try r.json()["written"] as? Bool == false)
        #expect(r.stderr.contains("convert refused") && r.stderr.contains("--accept-deviations"))
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
            let r = try densekit(["convert", source, "-o", output, "--accept-deviations"])
            #expect(r.status == 2 && r.stderr.split(separator: "\n").count == 1, "\(output): \(r.stderr)")
            #expect(r.stderr.hasPrefix("error: \(output): is the source file"), "\(r.stderr)")
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
        let r = try densekit(["convert", source, "-o", out, "--accept-deviations", "--input", input, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try r.json()
        #expect(o["written"] as? Bool == true && o["dtype"] as? String == "f32")
        #expect((o["validation"] as? [String: Any])?["bitIdentical"] as? Bool == true)
        #expect(r.stderr.isEmpty)  // progress only when stderr is a terminal
        let a = folder.appendingPathComponent("a.npy").path
        let b = folder.appendingPathComponent("b.npy").path
        #expect(try densekit(["run", source, "--input", input, "--output", a]).status == 0)
        #expect(try densekit(["run", out, "--input", input, "--output", b]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: a)) == Data(contentsOf: URL(fileURLWithPath: b)))
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
        let y = folder.appendingPathComponent("y.npy").path
        // The outputs are larger than one block (512 or 1024 bytes): every write hits the limit.
        for (args, file) in [
            (["convert", model, "-o", dnk, "--accept-deviations"], dnk),
            (["diff", model, model, "--input", input, "--report", report], report),
        ] {
            let r = try densekit(args, fileSizeLimit: 1)
            #expect(r.status == 2, "\(args): \(r.stderr)")
            #expect(
                r.stderr.hasPrefix("error: \(file): cannot write") && r.stderr.contains("File too large"), "\(r.stderr)"
            )
            #expect(r.stderr.split(separator: "\n").count == 1)
        }
        let full = Fixtures.full.map { "\($0)/densenet121-legacy-opset17.onnx" }
        if let full, FileManager.default.fileExists(atPath: full) {
            let r = try densekit(
                ["run", full, "--input", "\(Fixtures.full!)/input-224.npy", "--output", y], fileSizeLimit: 1)
            #expect(r.status == 2 && r.stderr.hasPrefix("error: \(y): cannot write"), "\(r.stderr)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    @Test func failuresLeaveNothingBehind() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let r = try densekit([
            "convert", Fixtures.path("tv-tiny-legacy-opset17.onnx"), "-o", "/nonexistent-dir/m.dnk",
            "--accept-deviations",
        ])
        #expect(r.status == 2)
        #expect(r.stderr.hasPrefix("error: /nonexistent-dir/m.dnk: cannot create a file"))
        let garbage = folder.appendingPathComponent("g.onnx").path
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: garbage))
        let out = folder.appendingPathComponent("m.dnk").path
        let g = try densekit(["convert", garbage, "-o", out])
        #expect(g.status == 2 && g.stderr.hasPrefix("error: \(garbage): "))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["g.onnx"])
        let bad = try densekit(["convert", Fixtures.path("tv-tiny-legacy-opset17.onnx"), "-o", out, "--dtype", "f8"])
        #expect(bad.status == 2 && bad.stderr.contains("--dtype"))
    }
}
