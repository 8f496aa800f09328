import DenseKit
import DenseKitExecute
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// `convert` of an int8 model: to `.dnk` (5.0) and ONNX it stays int8 (onnxruntime's QDQ format); to any other
/// target it is refused (exit 2, nothing written) unless `--dequantize`, which writes its weights as their float
/// values. Each written ONNX file loads in onnxruntime with DenseKit's outputs for it.
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
                + "floats (or write .dnk or ONNX, which keep it int8)\n")
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

    /// An int8 model to `.dnk` stays int8 (version 5.0), from each quantiser: read back, every weight has the
    /// source's codes and parameters, every op its activation quantisations, the arithmetic is the source's, and it
    /// runs bit-identically to the source on the fixture's input.
    @Test(arguments: [
        ("tv-tiny-qdq-u8.onnx", "input-64.npy"), ("tv-tiny-qoperator-u8.onnx", "input-64.npy"),
        ("tv-tiny-qdq-s8-perchannel.onnx", "input-64.npy"), ("keras2-tiny-int8.tflite", "input-64-nhwc.npy"),
        ("keras2-tiny-int8-dynamic.tflite", "input-64-nhwc.npy"),
    ])
    func anInt8ModelIsWrittenAsAnInt8DNK(_ fixture: (String, String)) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = Fixtures.path(fixture.0)
        let written = folder.appendingPathComponent("int8.dnk").path
        let outcome = try densekit(["convert", source, "-o", written, "--accept-deviations"])
        #expect(outcome.status == 0 && outcome.stdout.contains(" bytes, int8 ("), "\(outcome.stderr)")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: written))
        #expect([bytes[8], bytes[10]] == [5, 0])

        let net = try ModelLoader.load(path: source)
        let reread = try ModelLoader.load(path: written)
        #expect(reread.isQuantized && reread.integerArithmetic == net.integerArithmetic)
        #expect(reread.tensors.map(\.quantized) == net.tensors.map(\.quantized))
        #expect(reread.tensors.map(\.values) == net.tensors.map(\.values))
        for (a, b) in zip(net.steps, reread.steps) {
            #expect(a.activationQuantizations.map(\.part) == b.activationQuantizations.map(\.part), "\(a.layer)")
            #expect(
                a.activationQuantizations.map(\.quantization) == b.activationQuantizations.map(\.quantization),
                "\(a.layer)")
        }
        let modelInput = try ModelInput(try Fixtures.npy(Fixtures.path(fixture.1)), layout: nil, for: net)
        let want = try Executor(net).run(modelInput.values, batch: 2, height: 64, width: 64)
        let got = try Executor(reread).run(modelInput.values, batch: 2, height: 64, width: 64)
        #expect(got == want)
        #expect(try densekit(["inspect", written]).stdout.contains("note        int8: activations "))
    }

    /// A forged int8 `.dnk` (its metadata rewritten with valid checksums, its length unchanged): an integer tensor
    /// whose parameters are missing, a negative weight scale, a negative activation scale: exit 2 naming the tensor or
    /// the layer.
    @Test func aForgedInt8DNKIsRefusedNamingTheTensorOrLayer() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let written = folder.appendingPathComponent("int8.dnk").path
        #expect(
            try densekit(["convert", Fixtures.path("tv-tiny-qdq-u8.onnx"), "-o", written, "--accept-deviations"])
                .status == 0)
        let good = try Data(contentsOf: URL(fileURLWithPath: written))
        func u64(_ at: Int) -> Int { Int(good.subdata(in: at..<(at + 8)).withUnsafeBytes { $0.load(as: UInt64.self) }) }
        let (metaStart, metaEnd) = (u64(16), u64(16) + u64(24))
        let json = String(decoding: good[metaStart..<metaEnd], as: UTF8.self)
        /// The file with `edit` applied to its metadata text (same length), checksums recomputed; its refusal.
        func refusal(_ edit: (String) -> String) throws -> String {
            let text = edit(json)
            #expect(text.utf8.count == json.utf8.count && text != json)
            var data = good
            data.replaceSubrange(metaStart..<metaEnd, with: Data(text.utf8))
            func put(_ at: Int, _ value: UInt64) {
                data.replaceSubrange(at..<(at + 8), with: withUnsafeBytes(of: value.littleEndian, Array.init))
            }
            put(72, data.subdata(in: metaStart..<u64(32)).withUnsafeBytes { XXH64.hash($0) })
            put(120, data.prefix(120).withUnsafeBytes { XXH64.hash($0) })
            let path = try Fixtures.write(data, as: "forged.dnk", in: folder)
            let outcome = try densekit(["inspect", path])
            #expect(outcome.status == 2 && outcome.stderr.split(separator: "\n").count == 1, "\(outcome.stderr)")
            return String(outcome.stderr.dropFirst("error: \(path): ".count).dropLast())
        }
        /// The first scale after `key` made negative: "0.0123" becomes "-0.012".
        func negatingFirstScale(after key: String) -> (String) -> String {
            { text in
                guard let keyRange = text.range(of: key),
                    let scales = text.range(of: "\"scales\":[", range: keyRange.upperBound..<text.endIndex),
                    let end = text[scales.upperBound...].firstIndex(where: { $0 == "," || $0 == "]" })
                else { return text }
                let number = text[scales.upperBound..<end]
                return text.replacingCharacters(in: scales.upperBound..<end, with: "-" + number.dropLast())
            }
        }
        let missing = try refusal {
            $0.replacingOccurrences(of: "\"stem.conv.weight\":{", with: "\"stem.conv.weigh_\":{")
        }
        #expect(
            missing
                == "tensor 'stem.conv.weight': expected int8 parameters in structure.quantization.tensors, found none",
            "\(missing)")
        let weight = try refusal(negatingFirstScale(after: "\"stem.conv.weight\":{"))
        #expect(
            weight.hasPrefix(
                "tensor 'stem.conv.weight': expected quantisation scales finite and above 0, found scale -"),
            "\(weight)")
        let activation = try refusal(negatingFirstScale(after: "\"block1.layer1.conv\":{"))
        #expect(
            activation.hasPrefix(
                "block1.layer1.conv output: expected quantisation scales finite and above 0, found "
                    + "scale -"),
            "\(activation)")
    }
}
