import DenseKitFormats
import Foundation
import TestSupport
import Testing

/// A float16 ONNX as onnxconverter-common's `convert_float_to_float16` writes it (float16 weights, input
/// and output): read, run on float32 or float16 input to onnxruntime's float16 output (within 1e-2 of its
/// largest value), and diffed against the float32 file it came from, layer by layer.
@Suite struct Float16ONNXCLITests {
    let model = Fixtures.path("tv-tiny-legacy-opset17-fp16io.onnx")
    let reference = Fixtures.path("tv-tiny-legacy-opset17-fp16io.out.npy")

    /// `input-64.npy` as a little-endian float16 .npy.
    static func float16Input(in folder: URL) throws -> String {
        let input = try NPY.read(path: Fixtures.path("input-64.npy"))
        let shape = input.shape.map(String.init).joined(separator: ", ")
        let header = "{'descr': '<f2', 'fortran_order': False, 'shape': (\(shape)), }\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        bytes += [UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)] + Array(header.utf8)
        for value in input.values { bytes += withUnsafeBytes(of: Float16(value).bitPattern.littleEndian, Array.init) }
        return try Fixtures.write(Data(bytes), as: "input-64-f16.npy", in: folder)
    }

    @Test func runsOnFloat32AndFloat16Input() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        for input in [Fixtures.path("input-64.npy"), try Self.float16Input(in: folder)] {
            let output = folder.appendingPathComponent("out.npy").path
            let outcome = try densekit(["run", model, "--input", input, "--output", output])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let error = relativeError(try NPY.read(path: output).values, try NPY.read(path: reference).values)
            #expect(error <= 1e-2, "\(input): \(error)")
        }
        let inspect = try densekit(["inspect", model])
        #expect(inspect.stdout.contains("float16 input and output: DenseKit takes and gives float32"))
    }

    @Test func diffAgainstTheFloat32File() throws {
        let outcome = try densekit([
            "diff", Fixtures.path("tv-tiny-legacy-opset17.onnx"), model, "--input", Fixtures.path("input-64.npy"),
            "--json",
        ])
        let report = try outcome.json()
        let output = try #require(report["output"] as? [String: Any])
        #expect(output["top1Agreement"] as? Double == 1)
        let maxRel = try #require(output["maxRel"] as? Double)
        #expect(maxRel > 0 && maxRel < 1e-2, "\(maxRel)")
        let layers = try #require(report["layers"] as? [[String: Any]])
        #expect(layers.count == 10 && layers.allSatisfy { ($0["maxRel"] as? Double ?? 1) < 1e-2 }, "\(layers)")
    }
}
