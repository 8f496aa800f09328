import DenseKit
import DenseKitExecute
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// TensorFlow Lite's int8 conversions of the tiny tf_keras DenseNet against TensorFlow Lite's own kernels' outputs
/// (TensorFlow 2.21's interpreter without its default XNNPACK delegate, recorded when the fixtures were made on the
/// shared NHWC input, with the model calibrated on it): the full-integer file's int8 logits exactly, its softmax
/// within the bar; the dynamic-range file's hybrid conv to float rounding.
@Suite struct TFLiteQuantizedTests {
    static let input = "input-64-nhwc.npy"

    static func run(_ net: DenseNet, input: String = Self.input) throws -> [Float] {
        let input = try ModelInput(try Fixtures.npy(Fixtures.path(input)), layout: nil, for: net)
        let executor = try Executor(net)
        #expect(executor.integerArithmetic == .tflite)
        return try executor.run(input.values, batch: input.batch, height: input.height, width: input.width)
    }

    static func top1(_ values: ArraySlice<Float>) -> Int { values.indices.max { values[$0] < values[$1] } ?? -1 }

    /// The int8 logits (the FULLY_CONNECTED's codes, before the softmax) are TensorFlow Lite's, all 20: every conv's
    /// fixed-point requantisation, the BatchNorms' int8 MUL and ADD, the average pools' rounding and the MEAN.
    @Test func fullIntegerLogitsAreTensorFlowLitesExactly() throws {
        var net = try ModelLoader.load(path: Fixtures.path("keras2-tiny-int8.tflite"))
        let q = try #require(net.head.dense.last?.linear.outputQuantization)
        net.head.dense[net.head.dense.count - 1].activation = .linear
        net.head.outputQuantization = nil  // the softmax's
        let codes = try Self.run(net).map { Int32(($0 / q.scales[0]).rounded()) + q.zeroPoints[0] }
        let want = try Fixtures.npy(Fixtures.path("keras2-tiny-int8-tflite.logits.npy")).values.map { Int32($0) }
        #expect(codes.count == 20 && codes == want, "\(codes) against \(want)")
    }

    /// Each transition's output codes (its AVERAGE_POOL_2D, NHWC in the reference) are TensorFlow Lite's for both
    /// images: the transition convs are where the matrix multiplication's rounding (half up) and gemmlowp's (half
    /// away from zero) part, on 9 of their 5,120 outputs.
    @Test func transitionOutputsAreTensorFlowLitesCodesExactly() throws {
        let net = try ModelLoader.load(path: Fixtures.path("keras2-tiny-int8.tflite"))
        let input = try ModelInput(try Fixtures.npy(Fixtures.path(Self.input)), layout: nil, for: net)
        let executor = QuantizedExecutor(net)
        let per = input.values.count / input.batch
        for image in 0..<input.batch {
            var observed: [String: QuantizedExecutor.ObservedLayer] = [:]
            _ = executor.run(
                image: Array(input.values[(image * per)..<((image + 1) * per)]), height: 64, width: 64
            ) { observed[$0.name] = $0 }
            for (number, transition) in net.transitions.enumerated() {
                let q = try #require(transition.pool.outputQuantization ?? transition.conv.outputQuantization)
                let layer = try #require(observed["transition\(number + 1)"])
                let want = try Fixtures.npy(Fixtures.path("keras2-tiny-int8-tflite.transition\(number + 1).npy"))
                let plane = layer.height * layer.width
                #expect(want.values.count == input.batch * plane * layer.channels)
                var mismatches = 0
                for c in 0..<layer.channels {
                    for i in 0..<plane {
                        let code = Int32((layer.values[c * plane + i] / q.scales[0]).rounded()) + q.zeroPoints[0]
                        let reference = Int32(want.values[(image * plane + i) * layer.channels + c])
                        if code != reference { mismatches += 1 }
                    }
                }
                #expect(mismatches == 0, "image \(image), transition\(number + 1): \(mismatches) codes differ")
            }
        }
    }

    /// Full-size DenseNet-121 (make fixtures-full: tf_keras's, random weights, calibrated on the 224 input), both
    /// conversions: the full-integer file's 1000 int8 logits are TensorFlow Lite's; the dynamic-range file (every
    /// conv and the classifier hybrid) within float rounding of its outputs (measured: 3.3e-9 of 0.005).
    @Test(.enabled(if: Fixtures.full != nil, "full-size fixtures not built (make fixtures-full)"))
    func fullSizeDenseNet121MatchesTensorFlowLite() throws {
        let folder = try #require(Fixtures.full)
        let input = try Fixtures.npy(folder + "/input-224-nhwc.npy")
        var net = try ModelLoader.load(path: folder + "/keras2-densenet121-int8.tflite")
        let q = try #require(net.head.dense.last?.linear.outputQuantization)
        net.head.dense[net.head.dense.count - 1].activation = .linear
        net.head.outputQuantization = nil  // the softmax's
        let modelInput = try ModelInput(input, layout: nil, for: net)
        let logits = try Executor(net).run(modelInput.values, batch: 1, height: 224, width: 224)
        let codes = logits.map { Int32(($0 / q.scales[0]).rounded()) + q.zeroPoints[0] }
        let want = try Fixtures.npy(folder + "/keras2-densenet121-int8-tflite.logits.npy").values.map { Int32($0) }
        let differing = zip(codes, want).filter { $0 != $1 }.count
        #expect(codes.count == 1000 && differing == 0, "\(differing) of 1000 logits differ")

        let dynamic = try ModelLoader.load(path: folder + "/keras2-densenet121-int8-dynamic.tflite")
        let got = try Executor(dynamic).run(
            try ModelInput(input, layout: nil, for: dynamic).values, batch: 1, height: 224, width: 224)
        let reference = try Fixtures.npy(folder + "/keras2-densenet121-int8-dynamic-tflite.out.npy").values
        let largest = reference.max() ?? 0
        let worst = zip(got, reference).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 1e-5 * largest, "\(worst) of \(largest)")
        #expect(Self.top1(got[...]) == Self.top1(reference[...]))
    }

    /// The softmax after them: TensorFlow Lite's int8 SOFTMAX (a lookup table, output scale 1/256, zero point
    /// -128) against DenseKit's float softmax of the same logits quantised to the output's parameters: the same
    /// codes for all 20 values (the bar is 2e-2 of the largest value and the same top-1 per image).
    @Test func fullIntegerOutputsAreTensorFlowLitesCodes() throws {
        let got = try Self.run(try ModelLoader.load(path: Fixtures.path("keras2-tiny-int8.tflite")))
        let want = try Fixtures.npy(Fixtures.path("keras2-tiny-int8-tflite.out.npy")).values.map { ($0 + 128) / 256 }
        #expect(got.count == 20 && want.count == 20)
        let largest = want.max() ?? 0
        let worst = zip(got, want).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst <= 2e-2 * largest, "\(worst) of \(largest)")
        #expect(worst == 0, "\(worst)")
        for image in 0..<2 {
            let range = (image * 10)..<((image + 1) * 10)
            #expect(Self.top1(got[range]) == Self.top1(want[range]))
        }
    }

    /// The full-integer conversion with a uint8 input and output (as for an Edge TPU): a QUANTIZE from uint8 to int8
    /// after the input and back before the output, the same scales with zero points 128 apart, which give the same
    /// real values. The stem reads the int8 codes; the output is the uint8 one; all 20 outputs are TensorFlow
    /// Lite's codes (scale 1/256, zero point 0).
    @Test func aUint8InputAndOutputGiveTensorFlowLitesCodes() throws {
        let net = try ModelLoader.load(path: Fixtures.path("keras2-tiny-uint8.tflite"))
        #expect(net.stem.conv.inputQuantization?.storage == .int8)
        #expect(net.head.outputQuantization == Quantization(storage: .uint8, scale: 1.0 / 256, zeroPoint: 0))
        let got = try Self.run(net)
        let want = try Fixtures.npy(Fixtures.path("keras2-tiny-uint8-tflite.out.npy")).values.map { $0 / 256 }
        #expect(got.count == 20 && got == want, "\(zip(got, want).map { abs($0 - $1) }.max() ?? 0)")
    }

    /// A model's own preprocessing in the full-integer conversion (calibrated on 0..255 pixels), on the int8 input's
    /// codes with int8 constants: a Keras `Rescaling` (MUL and ADD of one constant each) and an adapted
    /// `Normalization` (its 1/255 MUL, then SUB and MUL of one constant per channel). Read as steps on codes in
    /// TensorFlow Lite's arithmetic; the code they give in each channel for each of the 256 input codes is TensorFlow
    /// Lite's (recorded from the last step's output), and so are all 6 outputs (the int8 logits: these heads are
    /// linear).
    @Test(arguments: [
        ("keras2-tiny-rescaling", [QuantizedInputTransform.Step.Operation.multiply, .add]),
        ("keras2-tiny-normalization-adapted", [.multiply, .subtract, .multiply]),
    ])
    func preprocessingOnTheInputsCodesGivesTensorFlowLitesCodesAndOutputs(
        _ fixture: (String, [QuantizedInputTransform.Step.Operation])
    ) throws {
        let net = try ModelLoader.load(path: Fixtures.path(fixture.0 + "-int8.tflite"))
        let steps = try #require(net.inputTransform?.quantized)
        #expect(steps.steps.map(\.operation) == fixture.1)
        #expect(steps.input.storage == .int8 && steps.output == net.stem.conv.inputQuantization)
        let recorded = try Fixtures.npy(Fixtures.path(fixture.0 + "-int8-tflite.steps.npy"))
        #expect(recorded.shape == [3, 256])
        for channel in 0..<3 {
            let want = Array(recorded.values[(channel * 256)..<((channel + 1) * 256)])
            #expect(steps.codeTable(.tflite, channel: channel).map(Float.init) == want, "channel \(channel)")
        }

        let logits = try #require(net.head.dense.last?.linear.outputQuantization)
        let got = try Self.run(net, input: "input-64-pixels-nhwc.npy")
        let codes = got.map { Float(Int32(($0 / logits.scales[0]).rounded()) + logits.zeroPoints[0]) }
        let want = try Fixtures.npy(Fixtures.path(fixture.0 + "-int8-tflite.out.npy")).values
        #expect(codes.count == 6 && codes == want, "\(codes) against \(want)")
    }

    /// The Rescaling's steps say in real values what the float model's layer does: x / 127.5 - 1.
    @Test func aRescalingOnCodesIsTheLayersScaleAndOffset() throws {
        let net = try ModelLoader.load(path: Fixtures.path("keras2-tiny-rescaling-int8.tflite"))
        let transform = try #require(net.inputTransform)
        #expect(abs(transform.scale[0] - 1 / 127.5) < 1e-4 && abs(transform.offset[0] + 1) < 1e-2)
        // The output tensor's parameters (the FULLY_CONNECTED's), as TensorFlow Lite's interpreter reports them.
        let logits = try #require(net.head.dense.last?.linear.outputQuantization)
        #expect(logits == Quantization(storage: .int8, scale: 0.008256779, zeroPoint: -8))
    }

    /// Dynamic range: only the stem conv's weights are int8 (the converter keeps smaller tensors float); its hybrid
    /// kernel quantises each image on the fly. Measured: within 3e-8 of TensorFlow Lite's outputs.
    @Test func dynamicRangeOutputsAreTensorFlowLitesToFloatRounding() throws {
        let net = try ModelLoader.load(path: Fixtures.path("keras2-tiny-int8-dynamic.tflite"))
        #expect(net.stem.conv.weight.quantized?.quantization.axis == 0)
        #expect(net.stem.conv.inputQuantization == nil && net.stem.conv.outputQuantization == nil)
        let got = try Self.run(net)
        let want = try Fixtures.npy(Fixtures.path("keras2-tiny-int8-dynamic-tflite.out.npy")).values
        let worst = zip(got, want).map { abs($0 - $1) }.max() ?? .infinity
        #expect(got.count == 20 && worst <= 1e-6, "\(worst)")
    }

    /// The reader keeps each weight's codes and parameters: the stem filter (OHWI in the file) moved to OIHW with
    /// its per-channel axis, the BatchNorms' factors per tensor with the MUL's product quantisation.
    @Test func theGraphCarriesTensorFlowLitesQuantisation() throws {
        let net = try ModelLoader.load(path: Fixtures.path("keras2-tiny-int8.tflite"))
        #expect(net.integerArithmetic == .tflite && net.isQuantized)
        let filter = try #require(net.stem.conv.weight.quantized)
        #expect(filter.quantization.axis == 0 && filter.quantization.scales.count == 8)
        #expect(net.stem.conv.weight.shape == [8, 3, 7, 7])
        // Codes and values agree after the move: value = code x scale of its output channel.
        let values = net.stem.conv.weight.values
        for i in stride(from: 0, to: values.count, by: 37) {
            #expect(values[i] == Float(filter.codes[i]) * filter.quantization.scales[i / 147])
        }
        let norm = try #require(net.blocks.first?.layers.first?.norm)
        #expect(norm.gamma.quantized != nil && norm.beta.quantized != nil && norm.productQuantization != nil)
        #expect(net.stem.conv.inputQuantization?.scales == [0.03305641561746597])
    }

    @Test func runInspectAndConvertSayWhoseArithmetic() throws {
        let model = Fixtures.path("keras2-tiny-int8.tflite")
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("y.npy").path
        let run = try densekit(["run", model, "--input", Fixtures.path(Self.input), "-o", output, "--threads", "1"])
        #expect(run.status == 0 && run.stderr.contains("1 thread, int8, TensorFlow Lite's arithmetic; load"))
        let inspect = try densekit(["inspect", model])
        #expect(
            inspect.stdout.contains(
                "int8, TensorFlow Lite's full-integer format: activations int8, weights int8 per channel; 16 of 16 "
                    + "convs and linear layers on integers; runs with its kernels' fixed-point arithmetic"))
        // ONNX's QDQ cannot hold TensorFlow Lite's arithmetic: refused unless dequantised.
        let onnx = folder.appendingPathComponent("m.onnx").path
        let refused = try densekit(["convert", model, "-o", onnx, "--accept-deviations"])
        #expect(refused.status == 2 && refused.stderr.contains("cannot write onnx: the model is int8 with TensorFlow "))
        #expect(!FileManager.default.fileExists(atPath: onnx))
        let written = try densekit(["convert", model, "-o", onnx, "--accept-deviations", "--dequantize"])
        #expect(written.status == 0 && FileManager.default.fileExists(atPath: onnx), "\(written.stderr)")
    }

    /// `diff FLOAT INT8` over TensorFlow Lite's pair, layer by layer and with --sensitivity.
    @Test func diffAndSensitivityCompareTheFloatAndInt8Files() throws {
        let outcome = try densekit([
            "diff", Fixtures.path("keras2-tiny.tflite"), Fixtures.path("keras2-tiny-int8.tflite"), "--input",
            Fixtures.path(Self.input), "--sensitivity", "--json",
        ])
        #expect(outcome.status == 1, "\(outcome.stderr)")  // they differ beyond the float tolerance
        let json = try outcome.json()
        let layers = try #require(json["layers"] as? [[String: Any]])
        #expect(layers.count == 10 && layers.allSatisfy { (($0["cosine"] as? Double) ?? 0) > 0.999 })
        let sensitivity = try #require(json["sensitivity"] as? [[String: Any]])
        #expect(
            Set(sensitivity.compactMap { $0["layer"] as? String }) == Set(layers.compactMap { $0["name"] as? String }))
    }
}

/// TensorFlow Lite's fixed-point primitives against values worked by hand from gemmlowp's definitions (and checked
/// with a Python transcription of them on the fixture's tensors).
@Suite struct TFLiteArithmeticTests {
    @Test func quantizeMultiplierGivesThirtyOneFractionalBitsAndAShift() {
        let m = TFLiteArithmetic.Multiplier(0.0017927632007688247)
        #expect(m.fixed == 1_971_163_985 && m.shift == -9)
        let one = TFLiteArithmetic.Multiplier(1)
        #expect(one.fixed == 1 << 30 && one.shift == 1)
        #expect(TFLiteArithmetic.Multiplier(0).fixed == 0 && TFLiteArithmetic.Multiplier(1e-12).fixed == 0)
        #expect(TFLiteArithmetic.Multiplier(.infinity).fixed == Int32.max)
    }

    /// -1394 x 0.00179276 = -2.4991: gemmlowp's two roundings half away from zero give -1280 then -3; the matrix
    /// multiplication's (both half up) give -2, as TensorFlow Lite's convs do.
    @Test func theTwoRoundingsDifferJustBelowAHalf() {
        let m = TFLiteArithmetic.Multiplier(0.0017927632007688247)
        #expect(TFLiteArithmetic.doublingHighMultiply(-1394, m.fixed) == -1280)
        #expect(TFLiteArithmetic.multiply(-1394, by: m) == -3)
        #expect(TFLiteArithmetic.multiplyInGEMM(-1394, by: m) == -2)
        #expect(TFLiteArithmetic.multiply(1394, by: m) == 3 && TFLiteArithmetic.multiplyInGEMM(1394, by: m) == 3)
        #expect(TFLiteArithmetic.doublingHighMultiply(Int32.min, Int32.min) == Int32.max)
        #expect(TFLiteArithmetic.roundingDivide(-5, byPowerOfTwo: 1) == -3)
        #expect(TFLiteArithmetic.roundingDivide(5, byPowerOfTwo: 1) == 3)
        #expect(TFLiteArithmetic.roundingDivide(-4, byPowerOfTwo: 1) == -2)
    }

    @Test func averagePoolRoundsHalfAwayFromZero() {
        #expect(TFLiteArithmetic.average(-362, count: 4, range: -128...127) == -91)
        #expect(TFLiteArithmetic.average(362, count: 4, range: -128...127) == 91)
        #expect(TFLiteArithmetic.average(-361, count: 4, range: -128...127) == -90)
        #expect(TFLiteArithmetic.average(4 * 200, count: 4, range: -128...127) == 127)
    }

    /// [-1, 0, 3]: scale 4/255, the zero point from the minimum (-128 + 63.75, nudged to -64), codes -128, -64, 127.
    @Test func theHybridKernelsQuantiseFromTheMinimumAndMaximum() {
        let (codes, scale, zero) = TFLiteArithmetic.quantizeOnTheFly([-1, 0, 3])
        #expect(codes == [-128, -64, 127] && zero == -64 && abs(scale - 4 / 255) < 1e-9)
        #expect(TFLiteArithmetic.quantizeOnTheFly([0, 0]).codes == [0, 0])
        #expect(TFLiteArithmetic.quantizeOnTheFly([.nan, 1]).codes.count == 2)
    }
}
