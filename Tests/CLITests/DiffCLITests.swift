import DenseKit
import Foundation
import TestSupport
import Testing

/// `densekit diff` end to end, including a model file whose one layer was altered on disk.
@Suite struct DiffCLITests {
    /// The unfolded torch export with the weights of block2.layer1's 3x3 conv changed in the file.
    func alteredCopy(in folder: URL) throws -> String {
        var data = try Fixtures.data("tv-tiny-legacy-opset11-unfolded.onnx")
        let name = Data("features.denseblock2.denselayer1.conv2.weight".utf8)
        // The last occurrence is the initializer's name; its raw_data (field 9, tag 0x4A) follows.
        var at = try #require(data.range(of: name, options: .backwards)).upperBound
        #expect(data[at] == 0x4A)
        at += 1
        while data[at] & 0x80 != 0 { at += 1 }
        at += 1
        for i in stride(from: at, to: at + 64, by: 4) { data[i + 3] ^= 0x01 }  // flip a low exponent bit of 16 floats
        let path = folder.appendingPathComponent("altered.onnx").path
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func alteredFileIsBlamedOnItsLayer() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let altered = try alteredCopy(in: folder)
        let report = folder.appendingPathComponent("report.html").path
        let outcome = try densekit([
            "diff", Fixtures.path("tv-tiny-legacy-opset11-unfolded.onnx"), altered,
            "--input", Fixtures.path("input-64.npy"), "--json", "--report", report,
        ])
        #expect(outcome.status == 1, "\(outcome.stderr)")
        let parsed = try outcome.json()
        #expect(parsed["withinTolerance"] as? Bool == false)
        let first = try #require(parsed["firstDivergence"] as? [String: Any])
        #expect(first["name"] as? String == "block2.layer1")
        let layers = try #require(parsed["layers"] as? [[String: Any]])
        #expect(
            layers.map { $0["name"] as? String } == [
                "stem", "block1.layer1", "block1.layer2", "transition1", "block2.layer1",
                "block2.layer2", "transition2", "block3.layer1", "block3.layer2", "head",
            ])
        #expect(layers.prefix(4).allSatisfy { $0["maxAbs"] as? Double == 0 })
        let output = try #require(parsed["output"] as? [String: Any])
        for key in ["maxAbs", "maxRel", "cosine", "top1Agreement", "top5Agreement"] {
            #expect(output[key] != nil, "\(key)")
        }
        let html = try String(contentsOfFile: report, encoding: .utf8)
        #expect(html.contains("<svg") && html.contains("first divergence: block2.layer1"))
        #expect(!html.contains("http://") || html.contains("http://www.w3.org/2000/svg"))  // no external assets
        let text = try densekit([
            "diff", Fixtures.path("tv-tiny-legacy-opset11-unfolded.onnx"), altered, "--input",
            Fixtures.path("input-64.npy"),
        ])
        #expect(text.stdout.contains("diverge first at block2.layer1"))
        #expect(text.stdout.contains("> block2.layer1"))
    }

    @Test func agreeingExportsExitZero() throws {
        let outcome = try densekit([
            "diff", Fixtures.path("keras2-tiny.h5"), Fixtures.path("keras2-tiny-tf2onnx.onnx"),
            "--input", Fixtures.path("input-64-nhwc.npy"), "--json",
        ])
        #expect(outcome.status == 0)
        #expect(try outcome.json()["firstDivergence"] is NSNull)
    }

    @Test func differentArchitecturesExitTwo() throws {
        let pathB = Fixtures.path("cifar-plain-tiny-legacy-opset17.onnx")
        let outcome = try densekit([
            "diff", Fixtures.path("tv-tiny-legacy-opset17.onnx"), pathB, "--input", Fixtures.path("input-64.npy"),
        ])
        #expect(outcome.status == 2)
        #expect(
            outcome.stderr.hasPrefix(
                "error: \(pathB): the two models are not the same architecture: stem has 8 vs 16 channels"))
    }
}
