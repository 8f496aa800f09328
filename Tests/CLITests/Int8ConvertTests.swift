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
    /// tf2onnx's Keras exports (NHWC input) add a classifier whose product is quantised before its bias is added, a
    /// quantised softmax output and, with `Rescaling`, preprocessing on the input's codes (a Mul and an Add
    /// between quantisations).
    @Test(arguments: [
        ("tv-tiny-qdq-u8.onnx", "input-64.npy"), ("tv-tiny-qoperator-u8.onnx", "input-64.npy"),
        ("tv-tiny-qdq-s8-perchannel.onnx", "input-64.npy"),
        ("keras2-tiny-tf2onnx-qoperator-u8.onnx", "input-64-nhwc.npy"),
        ("keras2-tiny-rescaling-tf2onnx-qoperator-u8.onnx", "input-64-pixels-nhwc.npy"),
        ("keras2-tiny-rescaling-tf2onnx-qdq-u8.onnx", "input-64-pixels-nhwc.npy"),
        ("keras2-tiny-normalization-adapted-tf2onnx-qoperator-u8.onnx", "input-64-pixels-nhwc.npy"),
    ])
    func anInt8ModelIsWrittenAsQDQThatOnnxruntimeRuns(_ fixture: (String, String)) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = Fixtures.path(fixture.0)
        let written = folder.appendingPathComponent("int8.onnx").path
        let input = Fixtures.path(fixture.1)
        let layout = fixture.1.contains("nhwc") ? "nhwc" : "nchw"
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
        // The steps on the input's codes, named after the written file's nodes.
        func unnamed(_ transform: QuantizedInputTransform?) -> QuantizedInputTransform? {
            transform.map {
                QuantizedInputTransform(
                    input: $0.input,
                    steps: $0.steps.map {
                        var step = $0
                        step.origin = ""
                        return step
                    })
            }
        }
        #expect(unnamed(reread.inputTransform?.quantized) == unnamed(net.inputTransform?.quantized))
        #expect(reread.head.outputQuantization == net.head.outputQuantization)
        for (a, b) in zip(net.weightedOps, reread.weightedOps) {
            #expect(a.conv?.weight.quantized == b.conv?.weight.quantized, "\(a.layer)")
            #expect(a.conv?.outputQuantization == b.conv?.outputQuantization, "\(a.layer)")
            #expect(a.linear?.weight.quantized == b.linear?.weight.quantized, "\(a.layer)")
            #expect(a.linear?.productQuantization == b.linear?.productQuantization, "\(a.layer)")
        }
        let modelInput = try ModelInput(try Fixtures.npy(input), layout: nil, for: net)
        let densekitOutputs = try Executor(reread).run(modelInput.values, batch: 2, height: 64, width: 64)
        let out = folder.appendingPathComponent("ort.npy").path
        try Frameworks.run(
            .onnxruntime, [Frameworks.Case(file: written, input: input, layout: layout, output: out, model: [:])],
            in: folder)
        let onnxruntime = try Fixtures.npy(out).values
        if fixture.0.contains("u8") {
            #expect(onnxruntime == densekitOutputs, "\(relativeError(onnxruntime, densekitOutputs))")
        } else {
            #expect(relativeError(onnxruntime, densekitOutputs) <= 2e-2)
        }
    }

    /// An int8 model to `.dnk` stays int8 (version 5.0; 6.0 with preprocessing on the input's codes, 7.0 with a
    /// subtraction or a constant per channel among its steps), from each
    /// quantiser: read back, every weight has the source's codes and parameters, every op its activation
    /// quantisations, the input transform its steps, the arithmetic is the source's, and it runs bit-identically to
    /// the source on the fixture's input.
    @Test(arguments: [
        ("tv-tiny-qdq-u8.onnx", "input-64.npy"), ("tv-tiny-qoperator-u8.onnx", "input-64.npy"),
        ("tv-tiny-qdq-s8-perchannel.onnx", "input-64.npy"), ("keras2-tiny-int8.tflite", "input-64-nhwc.npy"),
        ("keras2-tiny-int8-dynamic.tflite", "input-64-nhwc.npy"), ("keras2-tiny-uint8.tflite", "input-64-nhwc.npy"),
        ("keras2-tiny-rescaling-tf2onnx-qoperator-u8.onnx", "input-64-pixels-nhwc.npy"),
        ("keras2-tiny-rescaling-int8.tflite", "input-64-pixels-nhwc.npy"),
        ("keras2-tiny-normalization-adapted-int8.tflite", "input-64-pixels-nhwc.npy"),
        ("keras2-tiny-normalization-adapted-tf2onnx-qdq-u8.onnx", "input-64-pixels-nhwc.npy"),
    ])
    func anInt8ModelIsWrittenAsAnInt8DNK(_ fixture: (String, String)) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = Fixtures.path(fixture.0)
        let written = folder.appendingPathComponent("int8.dnk").path
        let outcome = try densekit(["convert", source, "-o", written, "--accept-deviations"])
        #expect(outcome.status == 0 && outcome.stdout.contains(" bytes, int8 ("), "\(outcome.stderr)")
        let net = try ModelLoader.load(path: source)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: written))
        // 6.0 with steps on codes; 7.0 when they subtract or hold a constant per channel (a Normalization).
        let steps = net.inputTransform?.quantized?.steps
        let perChannel = steps?.contains { $0.operation == .subtract || $0.constants.count > 1 } ?? false
        #expect([bytes[8], bytes[10]] == [steps == nil ? 5 : perChannel ? 7 : 6, 0])

        let reread = try ModelLoader.load(path: written)
        #expect(reread.isQuantized && reread.integerArithmetic == net.integerArithmetic)
        #expect(reread.inputTransform == net.inputTransform)
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

    /// `fixture` converted to `.dnk` in `folder`, its metadata's JSON text, and a function that forges a copy with
    /// `edit` applied to that text (the same length; the metadata and header checksums recomputed, so only the
    /// graph's checks can catch it) and returns `densekit inspect`'s refusal of it (exit 2, one line), without the
    /// "error: <file>: " it starts with.
    static func forging(_ fixture: String, in folder: URL) throws -> (
        json: String, refusal: ((String) -> String) throws -> String
    ) {
        let written = folder.appendingPathComponent("int8.dnk").path
        #expect(try densekit(["convert", Fixtures.path(fixture), "-o", written, "--accept-deviations"]).status == 0)
        let good = try Data(contentsOf: URL(fileURLWithPath: written))
        func u64(_ at: Int) -> Int { Int(good.subdata(in: at..<(at + 8)).withUnsafeBytes { $0.load(as: UInt64.self) }) }
        let (metaStart, metaEnd) = (u64(16), u64(16) + u64(24))
        let json = String(decoding: good[metaStart..<metaEnd], as: UTF8.self)
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
        return (json, refusal)
    }

    /// A forged int8 `.dnk`: an integer tensor whose parameters are missing, a negative weight scale, a negative
    /// activation scale: exit 2 naming the tensor or the layer.
    @Test func aForgedInt8DNKIsRefusedNamingTheTensorOrLayer() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let refusal = try Self.forging("tv-tiny-qdq-u8.onnx", in: folder).refusal
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

    /// A forged 6.0 `.dnk` whose preprocessing on codes lies: a constant its type cannot hold, a result quantised
    /// otherwise than the stem conv reads it, a float scale other than its steps', a subtraction in onnxruntime's
    /// arithmetic, a step without its constant, an unknown operation: exit 2 naming the step or the key.
    @Test func aForgedInputTransformOnCodesIsRefusedNamingTheStep() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (json, refusal) = try Self.forging("keras2-tiny-rescaling-tf2onnx-qoperator-u8.onnx", in: folder)
        #expect(json.contains("\"constant\":255,") && json.contains("\"zeroPoints\":[129]}}]}"))
        // Each edit (its text, then the text in its place) and the refusal it gives.
        let lies = [
            (
                "\"constant\":255,", "\"constant\":256,",
                "the constant of QLinearMul node 'model/rescaling/mul_quant': expected a code of uint8, found 256"
            ),
            (
                "\"zeroPoints\":[129]}}]}", "\"zeroPoints\":[128]}}]}",
                "input transform on codes: expected its result quantised as the stem conv reads its input, found "
                    + "scale 0.0079641985, zero point 128 against scale 0.0079641985, zero point 129"
            ),
            (
                "\"scale\":[0.007843138,", "\"scale\":[0.007843139,",
                "input transform: expected the scale and offset of its steps on codes (x * 0.007843138 + -1.0), "
                    + "found x * [0.007843139, 0.007843138, 0.007843138] + -1.0"
            ),
            // onnxruntime has no integer Sub: a subtraction on codes is TensorFlow Lite's only.
            (
                "\"operation\":\"multiply\"", "\"operation\":\"subtract\"",
                "QLinearMul node 'model/rescaling/mul_quant': a subtraction on codes in onnxruntime's arithmetic"
            ),
            (
                "\"constant\":255,", "\"constanz\":255,",
                "metadata input.transform.codes: expected each step's constant as `constant` or as `constants`, "
                    + "found both or neither"
            ),
        ]
        for (text, replacement, expected) in lies {
            let refused = try refusal { $0.replacingOccurrences(of: text, with: replacement) }
            #expect(refused == expected, "\(replacement): \(refused)")
        }
        let operation = try refusal {
            $0.replacingOccurrences(of: "\"operation\":\"multiply\"", with: "\"operation\":\"multiplx\"")
        }
        #expect(operation.hasPrefix("metadata: structure.input.transform.codes.steps[0].operation: "), "\(operation)")
    }

    /// A forged 7.0 `.dnk` (TensorFlow Lite's Normalization on the input's codes: a constant per channel) whose
    /// step holds two codes for three channels: exit 2 naming the step.
    @Test func aForgedConstantPerChannelOfTheWrongLengthIsRefused() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let (json, refusal) = try Self.forging("keras2-tiny-normalization-adapted-int8.tflite", in: folder)
        // The first step with codes per channel keeps its first two; spaces after the array keep the length.
        let pattern = #""constants":\[(-?[0-9]+),(-?[0-9]+),(-?[0-9]+)\]"#
        let range = try #require(json.range(of: pattern, options: .regularExpression))
        let codes = json[range].dropFirst(#""constants":["#.count).dropLast().split(separator: ",")
        let twoCodes = #""constants":["# + codes.prefix(2).joined(separator: ",") + "]"
        let forged = try refusal {
            $0.replacingCharacters(
                in: range, with: twoCodes.padding(toLength: json[range].count, withPad: " ", startingAt: 0))
        }
        #expect(
            forged.hasPrefix(
                "the constant of SUB 1 ('model_1/normalization/sub'): expected one code, or one per "
                    + "input channel (3), found 2 codes"), "\(forged)")
    }
}
