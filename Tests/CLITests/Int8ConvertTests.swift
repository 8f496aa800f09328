import DenseKit
import DenseKitExecute
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// `convert` of an int8 model: to ONNX it stays int8 (onnxruntime's QDQ format); to any other target it is refused
/// (exit 2, nothing written) unless `--dequantize`, which writes its weights as their float values. Each written file
/// loads in onnxruntime with DenseKit's outputs for it.
@Suite struct Int8ConvertTests {
    @Test func anInt8ModelIsNotConvertedWithoutDequantize() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = Fixtures.path("tv-tiny-qdq-u8.onnx")
        let output = folder.appendingPathComponent("tv-tiny.safetensors").path
        let outcome = try densekit(["convert", source, "-o", output, "--accept-deviations"])
        #expect(outcome.status == 2)
        #expect(
            outcome.stderr
                == "error: \(source): cannot write safetensors: the model is int8 (activations uint8, weights int8 per "
                + "tensor; 16 of 16 convs and linear layers on integers); pass --dequantize to write its weights as "
                + "floats (or write ONNX, which keeps it int8)\n")
        #expect(!FileManager.default.fileExists(atPath: output))
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    @Test func dequantizeWritesTheFloatValuesAndOnnxruntimeRunsThem() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = Fixtures.path("tv-tiny-qdq-u8.onnx")
        let written = folder.appendingPathComponent("dequantized.onnx").path
        let input = Fixtures.path("input-64.npy")
        let outcome = try densekit([
            "convert", source, "-o", written, "--accept-deviations", "--dequantize", "--input", input, "--json",
        ])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let object = try outcome.json()
        let conventions = try #require(object["conventions"] as? [[String: Any]])
        let int8 = try #require(conventions.first { $0["subject"] as? String == "int8" })
        #expect((int8["detail"] as? String)?.hasPrefix("dequantised (--dequantize): each weight written as") == true)

        // The file holds the int8 model's weights as floats: DenseKit's float executor on the dequantised graph.
        let net = try ModelLoader.load(path: source)
        let modelInput = try ModelInput(try Fixtures.npy(input), layout: nil, for: net)
        let float = try Executor(net.dequantized()).run(
            modelInput.values, batch: modelInput.batch, height: 64, width: 64)
        let reread = try ModelLoader.load(path: written)
        #expect(!reread.isQuantized)
        #expect(reread.stem.conv.weight.values == net.stem.conv.weight.values)
        let rerun = try Executor(reread).run(modelInput.values, batch: modelInput.batch, height: 64, width: 64)
        #expect(rerun == float)
        // onnxruntime on the written file gives the same outputs.
        let out = folder.appendingPathComponent("ort.npy").path
        try Frameworks.run(
            .onnxruntime, [Frameworks.Case(file: written, input: input, layout: "nchw", output: out, model: [:])],
            in: folder)
        #expect(relativeError(try Fixtures.npy(out).values, float) <= 1e-5)
        // And it is not the int8 model: activations are no longer rounded to codes.
        let int8Outputs = try Executor(net).run(modelInput.values, batch: modelInput.batch, height: 64, width: 64)
        let moved = relativeError(float, int8Outputs)
        #expect(moved > 1e-4 && moved < 0.1, "\(moved)")
    }

    /// An int8 model to ONNX stays int8, in onnxruntime's QDQ format: read back, it has the source's quantisation at
    /// every site and runs bit-identically (the converter's validation); onnxruntime gives DenseKit's outputs for
    /// it, exactly for the uint8 files (QDQ and QOperator sources), within the int8 bar for the per-channel one.
    @Test(arguments: ["tv-tiny-qdq-u8.onnx", "tv-tiny-qoperator-u8.onnx", "tv-tiny-qdq-s8-perchannel.onnx"])
    func anInt8ModelIsWrittenAsQDQThatOnnxruntimeRuns(_ fixture: String) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = Fixtures.path(fixture)
        let written = folder.appendingPathComponent("int8.onnx").path
        let input = Fixtures.path("input-64.npy")
        let outcome = try densekit([
            "convert", source, "-o", written, "--accept-deviations", "--input", input, "--json",
        ])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let object = try outcome.json()
        let validation = try #require(object["validation"] as? [String: Any])
        #expect(validation["bitIdentical"] as? Bool == true)
        let conventions = try #require(object["conventions"] as? [[String: Any]])
        #expect(conventions.contains { ($0["detail"] as? String)?.hasPrefix("written in onnxruntime's QDQ") == true })

        let net = try ModelLoader.load(path: source)
        let reread = try ModelLoader.load(path: written)
        #expect(reread.isQuantized && reread.quantizationSummary == net.quantizationSummary)
        for (a, b) in zip(net.weightedOps, reread.weightedOps) {
            #expect(a.conv?.weight.quantized == b.conv?.weight.quantized, "\(a.layer)")
            #expect(a.conv?.outputQuantization == b.conv?.outputQuantization, "\(a.layer)")
            #expect(a.linear?.weight.quantized == b.linear?.weight.quantized, "\(a.layer)")
        }
        let modelInput = try ModelInput(try Fixtures.npy(input), layout: nil, for: net)
        let densekitOutputs = try Executor(reread).run(modelInput.values, batch: 2, height: 64, width: 64)
        let out = folder.appendingPathComponent("ort.npy").path
        try Frameworks.run(
            .onnxruntime, [Frameworks.Case(file: written, input: input, layout: "nchw", output: out, model: [:])],
            in: folder)
        let onnxruntime = try Fixtures.npy(out).values
        if fixture.contains("u8") {
            #expect(onnxruntime == densekitOutputs, "\(relativeError(onnxruntime, densekitOutputs))")
        } else {
            #expect(relativeError(onnxruntime, densekitOutputs) <= 2e-2)
        }
    }
}
