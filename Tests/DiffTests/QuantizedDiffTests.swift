import DenseKit
import DenseKitExecute
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// A float model against its int8 model (onnxruntime's static quantisation of the same export): layer by layer with
/// SQNR and saturation, and `--sensitivity` ranking the layers by the error each causes alone.
@Suite struct QuantizedDiffTests {
    static let scaleOfBlock2Layer5 = "/features/denseblock2/denselayer5/conv2/Conv_output_0_scale"

    /// tv-b262's QDQ file with block2.layer5's output scale made 32 times too coarse (the QuantizeLinear after its
    /// conv and the DequantizeLinears after it share the scale), in `folder`.
    static func coarseBlock2Layer5(in folder: URL) throws -> String {
        let bytes = try ONNXEditing.mutated(Fixtures.path("tv-b262-qdq-u8.onnx")) { model in
            let scale = try ONNXEditing.floats(model, scaleOfBlock2Layer5)
            #expect(scale.count == 1 && scale[0] > 0)
            try ONNXEditing.setFloats(model, scaleOfBlock2Layer5, [scale[0] * 32])
        }
        return try Fixtures.write(bytes, as: "tv-b262-coarse.onnx", in: folder)
    }

    static func input(for net: DenseNet) throws -> ModelInput {
        try ModelInput(try Fixtures.npy(Fixtures.path("input-64.npy")), layout: nil, for: net)
    }

    @Test func floatAgainstInt8ReportsEveryLayerWithItsSQNRAndSaturation() throws {
        let float = try ModelLoader.load(path: Fixtures.path("tv-b262.onnx"))
        let int8 = try ModelLoader.load(path: Fixtures.path("tv-b262-qdq-u8.onnx"))
        let x = try Self.input(for: float)
        let result = try ModelDiff(float, int8).run(x.values, batch: x.batch, height: x.height, width: x.width)
        #expect(result.quantized)
        #expect(result.layers.map(\.name) == float.layerNames)
        // Quantisation moves every layer (out of float32's tolerance) but keeps each far above noise: tens of dB.
        for layer in result.layers {
            #expect(!layer.withinTolerance && layer.metrics.sqnr > 15 && layer.metrics.sqnr < 60, "\(layer.name)")
            #expect(layer.metrics.cosine > 0.99, "\(layer.name)")
        }
        // The int8 side's codes: saturation where a layer is given as codes (not the head's float output).
        #expect(result.layers.dropLast().allSatisfy { $0.saturation != nil })
        #expect(result.layers.last?.saturation == nil)
        #expect(result.top1Agreement == 1)
    }

    @Test func aLayerWhoseOutputScaleIs32TimesTooCoarseRanksFirst() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let float = try ModelLoader.load(path: Fixtures.path("tv-b262.onnx"))
        let coarse = try ModelLoader.load(path: try Self.coarseBlock2Layer5(in: folder))
        let x = try Self.input(for: float)
        let analysis = try QuantizationSensitivity(float: float, int8: coarse)
        #expect(analysis.layers == float.layerNames)  // every canonical layer is quantised in this file
        let ranked = QuantizationSensitivity.ranked(
            try analysis.run(x.values, batch: x.batch, height: x.height, width: x.width))
        #expect(ranked.first?.layer == "block2.layer5")
        // Measured: 1.81e-2 of the output's scale over the two images, 1.6 times the next layer's (1.14e-2).
        let first = try #require(ranked.first)
        #expect(first.output.maxRel > 1.4 * ranked[1].output.maxRel, "\(ranked.prefix(2).map(\.output.maxRel))")
        #expect(first.images == 2)

        // The file as it was made: block2.layer5 is not the worst; its error is far below the coarse one.
        let original = try ModelLoader.load(path: Fixtures.path("tv-b262-qdq-u8.onnx"))
        let entries = try QuantizationSensitivity(float: float, int8: original).run(
            x.values, batch: x.batch, height: x.height, width: x.width)
        let fine = try #require(entries.first { $0.layer == "block2.layer5" })
        #expect(fine.output.maxRel * 2 < first.output.maxRel)
    }

    /// The analysis reuses the float model's state before each swapped layer; each entry is what running the float
    /// model with that one layer swapped in, from the input, gives. A swapped stem comes with the int8 model's
    /// preprocessing on the input's codes (a quantised Keras `Rescaling`): its input is what the int8 stem reads.
    @Test(arguments: [
        ("tv-b262.onnx", "tv-b262-qdq-u8.onnx", "input-64.npy"),
        (
            "keras2-tiny-rescaling-tf2onnx.onnx", "keras2-tiny-rescaling-tf2onnx-qoperator-u8.onnx",
            "input-64-pixels-nhwc.npy"
        ),
    ])
    func eachEntryIsTheFloatModelWithThatOneLayerSwappedIn(_ pair: (String, String, String)) throws {
        let float = try ModelLoader.load(path: Fixtures.path(pair.0))
        let int8 = try ModelLoader.load(path: Fixtures.path(pair.1))
        let x = try ModelInput(try Fixtures.npy(Fixtures.path(pair.2)), layout: nil, for: float)
        let entries = try QuantizationSensitivity(float: float, int8: int8).run(
            x.values, batch: x.batch, height: x.height, width: x.width)
        let per = x.values.count / x.batch
        let images = (0..<x.batch).map { Array(x.values[($0 * per)..<(($0 + 1) * per)]) }
        let floatOutputs = images.map { QuantizedExecutor(float).run(image: $0, height: 64, width: 64) }
        let int8Steps = int8.steps
        for (index, entry) in entries.enumerated() {
            #expect(entry.layer == int8Steps[index].layer.name)
            var position = -1
            var hybrid = float.mappingSteps { step in
                position += 1
                return position == index ? int8Steps[index] : step
            }
            if index == 0, int8.inputTransform?.quantized != nil { hybrid.inputTransform = int8.inputTransform }
            var worst = ErrorMetrics()
            for (n, image) in images.enumerated() {
                let got = QuantizedExecutor(hybrid).run(image: image, height: 64, width: 64)
                let metrics = got.withUnsafeBufferPointer { g in
                    floatOutputs[n].withUnsafeBufferPointer { ErrorMetrics(g, $0) }
                }
                worst = n == 0 ? metrics : worst.merged(metrics)
            }
            #expect(entry.output == worst, "\(entry.layer)")
            #expect(entry.output.maxRel > 0)
        }
    }

    @Test func theCommandRanksTheLayersInTextJSONAndTheReport() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let coarse = try Self.coarseBlock2Layer5(in: folder)
        let report = folder.appendingPathComponent("report.html").path
        let float = Fixtures.path("tv-b262.onnx")
        let input = Fixtures.path("input-64.npy")
        let json = try densekit([
            "diff", float, coarse, "--input", input, "--sensitivity", "--json", "--report", report,
        ])
        #expect(json.status == 1, "\(json.stderr)")  // int8 is beyond float32's tolerance
        let object = try json.json()
        let sensitivity = try #require(object["sensitivity"] as? [[String: Any]])
        #expect(sensitivity.count == 14)
        #expect(sensitivity.first?["layer"] as? String == "block2.layer5")
        #expect(Set(sensitivity[0].keys) == ["layer", "outputMaxRel", "cosine", "top1Agreement"])
        let layers = try #require(object["layers"] as? [[String: Any]])
        #expect(layers.allSatisfy { $0["sqnrDb"] is Double })
        #expect(layers.first?["saturation"] is Double)
        let page = try String(contentsOfFile: report, encoding: .utf8)
        #expect(page.contains("<h2>Sensitivity: each layer alone quantised") && page.contains("SQNR dB"))

        let text = try densekit(["diff", float, coarse, "--input", input, "--sensitivity"])
        let lines = text.stdout.split(separator: "\n")
        let heading = try #require(lines.firstIndex { $0.hasPrefix("sensitivity (each layer alone quantised") })
        #expect(lines[heading + 2].hasPrefix("  block2.layer5 "), "\(lines[heading + 2])")

        // Float against float: no SQNR or saturation keys, as before.
        let plain = try densekit(["diff", float, float, "--input", input, "--json"])
        #expect(plain.status == 0 && !plain.stdout.contains("sqnrDb") && !plain.stdout.contains("saturation"))
    }

    @Test func sensitivityNeedsTheFloatModelFirstAndAnInt8ModelSecond() throws {
        let float = Fixtures.path("tv-b262.onnx")
        let int8 = Fixtures.path("tv-b262-qdq-u8.onnx")
        let input = Fixtures.path("input-64.npy")
        let swapped = try densekit(["diff", int8, float, "--input", input, "--sensitivity"])
        #expect(swapped.status == 2)
        let expected = "--sensitivity compares a float model (first) with its int8 model; this one is int8"
        #expect(swapped.stderr == "error: \(int8): \(expected)\n")
        let noInt8 = try densekit(["diff", float, float, "--input", input, "--sensitivity"])
        #expect(noInt8.status == 2)
        #expect(
            noInt8.stderr == "error: \(float): --sensitivity needs an int8 model second; this one has no quantisation\n"
        )
        let other = try densekit([
            "diff", Fixtures.path("tv-tiny-legacy-opset17.onnx"), int8, "--input", input, "--sensitivity",
        ])
        #expect(other.status == 2 && other.stderr.contains("not the same architecture"), "\(other.stderr)")
    }
}
