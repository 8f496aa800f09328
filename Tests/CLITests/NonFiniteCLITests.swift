import DenseKitFormats
import Foundation
import TestSupport
import Testing

/// NaN and infinity (#42.8, 9): a non-finite input is refused by its index; a model that computes NaN
/// is a divergence at the layer that first does, with `null` for its metrics in JSON.
@Suite struct NonFiniteCLITests {
    let tiny = Fixtures.path("tv-tiny.safetensors")

    @Test(arguments: [Float.nan, .infinity, -.infinity])
    func aNonFiniteInputIsRefusedByItsIndex(_ value: Float) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var inputArray = try Fixtures.npy(Fixtures.path("input-64.npy"))
        #expect(inputArray.shape == [2, 3, 64, 64])
        inputArray.values[((1 * 3 + 2) * 64 + 3) * 64 + 4] = value
        let input = folder.appendingPathComponent("x.npy").path
        try NPY.write(inputArray, to: input)
        let output = folder.appendingPathComponent("y.npy").path
        let run = try densekit(["run", tiny, "--input", input, "--output", output])
        #expect(run.status == 2 && !FileManager.default.fileExists(atPath: output))
        #expect(
            run.stderr == "error: \(input): input value \(value) at index [1, 2, 3, 4]: the input must be finite "
                + "(a NaN or an infinity would make every output meaningless)\n")
        let diff = try densekit(["diff", tiny, tiny, "--input", input])
        #expect(diff.status == 2 && diff.stderr.hasPrefix("error: \(input): input value"), "\(diff.stderr)")
    }

    /// One NaN in block 2's first conv: every layer before it agrees, it is the first divergence, and
    /// its metrics (and every later layer's) are `null` in the JSON, which stays a full object.
    @Test func aNaNWeightIsTheFirstDivergenceWithNullMetrics() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var (entries, metadata) = try SafetensorsEditing.entries(try Fixtures.data("tv-tiny.safetensors"))
        let key = "features.denseblock2.denselayer1.conv1.weight"
        var weight = try #require(entries[key])
        #expect(weight.dtype == "F32")
        weight.bytes.replaceSubrange(0..<4, with: withUnsafeBytes(of: Float.nan.bitPattern.littleEndian, Array.init))
        entries[key] = weight
        let poisoned = try Fixtures.write(
            try SafetensorsEditing.file(entries, metadata: metadata), as: "nan.safetensors", in: folder)
        let input = Fixtures.path("input-64.npy")

        let json = try densekit(["diff", tiny, poisoned, "--input", input, "--json"])
        #expect(json.status == 1, "\(json.stderr)")
        let object = try json.json()
        #expect(object["withinTolerance"] as? Bool == false)
        let first = try #require(object["firstDivergence"] as? [String: Any])
        #expect(first["name"] as? String == "block2.layer1")
        #expect(first["maxAbs"] is NSNull && first["cosine"] is NSNull && first["withinTolerance"] as? Bool == false)
        let layers = try #require(object["layers"] as? [[String: Any]])
        let index = try #require(layers.firstIndex { $0["name"] as? String == "block2.layer1" })
        #expect(layers[..<index].allSatisfy { $0["withinTolerance"] as? Bool == true && $0["maxAbs"] is Double })
        #expect(layers[index...].allSatisfy { $0["withinTolerance"] as? Bool == false })
        #expect((object["output"] as? [String: Any])?["maxAbs"] is NSNull)

        let text = try densekit(["diff", tiny, poisoned, "--input", input])
        #expect(text.status == 1)
        #expect(text.stdout.hasPrefix("\(tiny) and \(poisoned) diverge first at block2.layer1"), "\(text.stdout)")
        #expect(text.stdout.contains("output max abs nan"), "\(text.stdout)")
    }
}
