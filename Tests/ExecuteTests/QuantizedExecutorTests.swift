import DenseKit
import DenseKitExecute
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// The integer executor against onnxruntime's own outputs on its int8 files (recorded when the fixtures were made,
/// onnxruntime 1.32 with its default optimisations, which fuse QDQ into its QLinear kernels, and its exact integer
/// products on every CPU, `session.x64quantprecision`: docs/formats.md).
@Suite struct QuantizedExecutorTests {
    static func outputs(_ model: String) throws -> (got: [Float], want: [Float], net: DenseNet) {
        let net = try ModelLoader.load(path: Fixtures.path(model))
        let input = try ModelInput(try Fixtures.npy(Fixtures.path("input-64.npy")), layout: nil, for: net)
        let executor = try Executor(net)
        #expect(executor.isQuantized)
        let got = try executor.run(input.values, batch: input.batch, height: input.height, width: input.width)
        let want = try Fixtures.npy(Fixtures.path(model.replacingOccurrences(of: ".onnx", with: ".out.npy"))).values
        #expect(got.count == want.count && got.count == 20)
        return (got, want, net)
    }

    static func top1(_ values: ArraySlice<Float>) -> Int { values.indices.max { values[$0] < values[$1] } ?? -1 }

    /// uint8 activations, per-tensor int8 weights, QDQ and QOperator: every int8 logit is onnxruntime's. tv-b262's
    /// transition convs have an odd output zero point (127), where QLinearAveragePool's rounding (the zero point added
    /// first) differs from rounding the offset.
    @Test(arguments: ["tv-tiny-qdq-u8.onnx", "tv-tiny-qoperator-u8.onnx", "tv-b262-qdq-u8.onnx"])
    func uint8ModelsGiveOnnxruntimesOutputsExactly(_ model: String) throws {
        let (got, want, _) = try Self.outputs(model)
        #expect(got == want, "\(zip(got, want).map { abs($0 - $1) }.max() ?? 0)")
    }

    /// int8 activations, per-channel weights (QDQ): onnxruntime leaves some of this file's ops unfused (its
    /// Concats, AveragePools and three convs run in float between DequantizeLinear and QuantizeLinear), where
    /// DenseKit computes as its QLinear kernels do. Measured: 4 of 20 logits one output code apart (0.0366, 0.8% of
    /// the largest), the same top-1 for both images; the bar is 2e-2 of the largest value and the same top-1.
    @Test func perChannelInt8ModelIsWithinOneOutputCodeOfOnnxruntime() throws {
        let (got, want, net) = try Self.outputs("tv-tiny-qdq-s8-perchannel.onnx")
        let logits = try #require(net.head.dense.last?.linear.outputQuantization?.scales.first)
        let largest = want.map(abs).max() ?? 0
        let worst = zip(got, want).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= logits * 1.0001 && worst <= 2e-2 * largest, "\(worst)")
        for image in 0..<2 {
            let range = (image * 10)..<((image + 1) * 10)
            #expect(Self.top1(got[range]) == Self.top1(want[range]))
        }
    }

    /// tf2onnx's export of a tf_keras DenseNet quantised without onnxruntime's pre-processing (NHWC input; a Pad
    /// before the max pool, of codes in QOperator, behind a QDQ pair in QDQ; the classifier a quantised MatMul then a
    /// quantised Add of the bias, QLinearMatMul and QLinearAdd in QOperator; the softmax's output quantised,
    /// QLinearSoftmax): within the bar, the same top-1. Measured: QDQ, 5 of 20 outputs one output code (1/255)
    /// apart, 1.5% of the largest (0.255); QOperator, 5 of 20 one code (1/256) apart, 1.5% of 0.258; from logits a
    /// code apart where onnxruntime takes the global pool's mean in float, and its softmax's lookup table.
    @Test(arguments: [("qdq-u8", Float(1) / 255), ("qoperator-u8", Float(1) / 256)])
    func aQuantisedTf2onnxExportOfKerasIsWithinTheBar(_ variant: (String, Float)) throws {
        let net = try ModelLoader.load(path: Fixtures.path("keras2-tiny-tf2onnx-\(variant.0).onnx"))
        let classifier = try #require(net.head.dense.last?.linear)
        #expect(classifier.productQuantization != nil && classifier.weight.quantized?.quantization.axis == nil)
        #expect(net.head.outputQuantization?.scales == [variant.1])
        let input = try ModelInput(try Fixtures.npy(Fixtures.path("input-64-nhwc.npy")), layout: nil, for: net)
        let got = try Executor(net).run(input.values, batch: 2, height: 64, width: 64)
        let want = try Fixtures.npy(Fixtures.path("keras2-tiny-tf2onnx-\(variant.0).out.npy")).values
        let largest = want.map(abs).max() ?? 0
        let worst = zip(got, want).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 1.0001 * variant.1 && worst <= 2e-2 * largest, "\(worst) of \(largest)")
        for image in 0..<2 {
            let range = (image * 10)..<((image + 1) * 10)
            #expect(Self.top1(got[range]) == Self.top1(want[range]))
        }
    }

    /// A Keras `Rescaling` quantised by onnxruntime (tf2onnx's export of the tf_keras model, 0..255 pixels): its Mul
    /// and Add run on the input's codes (QLinearMul and QLinearAdd in QOperator; in QDQ, a Mul and an Add between
    /// quantisations that onnxruntime fuses into them). So does an adapted `Normalization` after a 1/255 Rescaling:
    /// QLinearMul, then QLinearAdd and QLinearMul of one code per channel. Read as steps on codes; the code they give
    /// in each channel for each of the 256 input codes is onnxruntime's (recorded from its last step's output), and
    /// so are the outputs.
    @Test(arguments: [
        ("keras2-tiny-rescaling-tf2onnx", "qdq-u8"), ("keras2-tiny-rescaling-tf2onnx", "qoperator-u8"),
        ("keras2-tiny-normalization-adapted-tf2onnx", "qdq-u8"),
        ("keras2-tiny-normalization-adapted-tf2onnx", "qoperator-u8"),
    ])
    func preprocessingOnTheInputsCodesGivesOnnxruntimesCodesAndOutputs(_ fixture: (String, String)) throws {
        let net = try ModelLoader.load(path: Fixtures.path("\(fixture.0)-\(fixture.1).onnx"))
        let steps = try #require(net.inputTransform?.quantized)
        let rescaling = fixture.0.contains("rescaling")
        #expect(steps.steps.map(\.operation) == (rescaling ? [.multiply, .add] : [.multiply, .add, .multiply]))
        #expect(steps.steps.map(\.constants.count) == (rescaling ? [1, 1] : [1, 3, 3]))
        #expect(steps.input.storage == .uint8 && steps.output == net.stem.conv.inputQuantization)
        if rescaling {
            // In real values the Rescaling's 1/127.5 and -1, as the float export has them (to its constants' codes).
            let transform = try #require(net.inputTransform)
            #expect(abs(transform.scale[0] - 1 / 127.5) < 1e-4 && abs(transform.offset[0] + 1) < 1e-2)
        }
        let recorded = try Fixtures.npy(Fixtures.path("\(fixture.0)-qoperator-u8.steps.npy"))
        #expect(recorded.shape == [3, 256])
        for channel in 0..<3 {
            let want = Array(recorded.values[(channel * 256)..<((channel + 1) * 256)])
            #expect(steps.codeTable(.onnxruntime, channel: channel).map(Float.init) == want, "channel \(channel)")
        }

        let input = try ModelInput(try Fixtures.npy(Fixtures.path("input-64-pixels-nhwc.npy")), layout: nil, for: net)
        let got = try Executor(net).run(input.values, batch: 2, height: 64, width: 64)
        let want = try Fixtures.npy(Fixtures.path("\(fixture.0)-\(fixture.1).out.npy")).values
        #expect(got.count == 6 && got == want, "\(zip(got, want).map { abs($0 - $1) }.max() ?? 0)")
    }

    /// Full-size DenseNet-121 (make fixtures-full), onnxruntime's three quantisations of its legacy export: the
    /// uint8 files' 1000 logits are onnxruntime's exactly; the per-channel int8 file's are within the bar (measured:
    /// 0.51 of 63.9, 0.8%, in 230 of 1000 logits, where onnxruntime runs some ops unfused in float), same top-1.
    @Test(
        .enabled(if: Fixtures.full != nil, "full-size fixtures not built (make fixtures-full)"),
        arguments: ["densenet121-qdq-u8.onnx", "densenet121-qoperator-u8.onnx", "densenet121-qdq-s8-perchannel.onnx"])
    func fullSizeDenseNet121MatchesOnnxruntime(_ model: String) throws {
        let folder = try #require(Fixtures.full)
        let net = try ModelLoader.load(path: folder + "/" + model)
        let input = try ModelInput(try Fixtures.npy(folder + "/input-224.npy"), layout: nil, for: net)
        let got = try Executor(net).run(input.values, batch: 1, height: 224, width: 224)
        let want = try Fixtures.npy(folder + "/" + model.replacingOccurrences(of: ".onnx", with: ".out.npy")).values
        #expect(got.count == 1000 && want.count == 1000)
        if model.contains("u8") {
            #expect(got == want, "\(zip(got, want).map { abs($0 - $1) }.max() ?? 0)")
        } else {
            let largest = want.map(abs).max() ?? 0
            let worst = zip(got, want).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst <= 2e-2 * largest, "\(worst) of \(largest)")
            #expect(Self.top1(got[...]) == Self.top1(want[...]))
        }
    }

    @Test func runSaysTheModelRunsOnIntegers() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("y.npy").path
        let model = Fixtures.path("tv-tiny-qdq-u8.onnx")
        let input = Fixtures.path("input-64.npy")
        let text = try densekit(["run", model, "--input", input, "-o", output, "--threads", "1"])
        #expect(text.status == 0 && text.stderr.contains("1 thread, int8, onnxruntime's arithmetic; load"))
        #expect(try Fixtures.npy(output).values == (try Fixtures.npy(Fixtures.path("tv-tiny-qdq-u8.out.npy"))).values)
        let json = try densekit(["run", model, "--input", input, "-o", output, "--json"])
        #expect(json.status == 0 && json.stdout.contains("\"convolutions\" : \"int8\""), "\(json.stdout)")
    }

    /// The layer-by-layer activations are reported dequantised, one per canonical layer, and the head's is the
    /// output.
    @Test func everyCanonicalLayerIsObserved() throws {
        let net = try ModelLoader.load(path: Fixtures.path("tv-tiny-qoperator-u8.onnx"))
        let input = try ModelInput(try Fixtures.npy(Fixtures.path("input-64-one.npy")), layout: nil, for: net)
        var seen: [String] = []
        var head: [Float] = []
        let output = try Executor(net).run(input.values, batch: 1, height: 64, width: 64) { _, activation in
            seen.append(activation.name)
            if activation.name == "head" { head = Array(activation.values) }
        }
        #expect(seen == net.layerNames)
        #expect(head == output)
    }
}
