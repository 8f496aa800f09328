import DenseKit
import DenseKitExecute
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// Preprocessing inside the model: Keras `Rescaling` and `Normalization` layers before the backbone
/// (Keras 2 and 3, nested or flat, mean and variance given or adapted), and tf2onnx's export of one
/// (Mul and Add on the NHWC input), and tf.lite's conversion of them (MUL and ADD, SUB and MUL on the input). Each
/// becomes the graph's input transform and runs, on 0..255 pixels, to the output Keras (or onnxruntime) recorded.
@Suite struct InputTransformTests {
    /// Rescaling(1 / 127.5, offset=-1), as the fixture script builds it.
    static let toPlusMinusOne = (scale: Float(1 / 127.5), offset: Float(-1))
    /// Normalization(mean=ImageNet's * 255, variance=(ImageNet's std * 255)^2): scale 1 / (std * 255).
    static let imageNet = (
        scale: [0.229, 0.224, 0.225].map { Float(1 / ($0 * 255)) },
        offset: zip([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]).map { Float(-$0 / $1) }
    )

    static let files = [
        "keras3-tiny-rescaling.keras", "keras3-tiny-rescaling.h5", "keras2-tiny-rescaling.h5",
        "keras2-tiny-rescaling-tf2onnx.onnx", "keras3-tiny-normalization.keras", "keras3-tiny-normalization.h5",
        "keras2-tiny-normalization-adapted.h5", "keras2-tiny-normalization-adapted-tf2onnx.onnx",
        "keras2-tiny-rescaling.tflite", "keras2-tiny-normalization-adapted.tflite",
    ]

    @Test(arguments: files)
    func runsOnPixelsToTheFrameworksOutput(_ file: String) throws {
        let net = try ModelLoader.load(path: Fixtures.path(file))
        let transform = try #require(net.inputTransform)
        if file.contains("-rescaling") {
            #expect(transform.scale.allSatisfy { abs($0 - Self.toPlusMinusOne.scale) <= 1e-7 })
            #expect(transform.offset == [-1, -1, -1])
        } else if file.hasPrefix("keras3-tiny-normalization") {
            for c in 0..<3 {
                #expect(abs(transform.scale[c] - Self.imageNet.scale[c]) <= 1e-6 * Self.imageNet.scale[c])
                #expect(abs(transform.offset[c] - Self.imageNet.offset[c]) <= 1e-5)
            }
        }
        let pixels = try Fixtures.npy(Fixtures.path("input-64-pixels-nhwc.npy"))
        #expect(pixels.values.contains { $0 > 200 }, "the input is 0..255 pixels")
        let modelInput = try ModelInput(pixels, layout: nil, for: net)
        let results = try Executor(net, threads: 2).run(
            modelInput.values, batch: modelInput.batch, height: 64, width: 64)
        let reference = try Fixtures.npy(Fixtures.path(file.split(separator: ".")[0] + ".out.npy"))
        #expect(relativeError(results, reference.values) <= 1e-4, "\(relativeError(results, reference.values))")
        let plain = ReferenceExecutor(net).run(
            image: Array(modelInput.values[0..<(3 * 64 * 64)]), height: 64, width: 64)
        #expect(relativeError(Array(results[0..<3]), plain.output) <= 1e-5)
        // Without it the model is another function: the transform is what makes the outputs agree.
        var bare = net
        bare.inputTransform = nil
        let unscaled = try Executor(bare, threads: 2).run(
            modelInput.values, batch: modelInput.batch, height: 64, width: 64)
        #expect(relativeError(unscaled, reference.values) > 1e-2)
    }

    @Test func aNegativeVarianceIsRefusedNamingTheLayer() throws {
        #expect(
            throws: ImportError.mismatch(
                .kerasLayer("normalization_1", className: "Normalization"), expected: "variances of 0 or more",
                found: "-1.0 (channel 1)")
        ) { try ModelLoader.load(path: Fixtures.path("keras3-tiny-negative-variance.keras")) }
    }

    @Test func aRescalingAfterTheBackboneIsRefusedNamingTheLayer() throws {
        #expect(
            throws: ImportError.mismatch(
                .kerasLayer("rescaling_1", className: "Rescaling"),
                expected: "a global pool, Dropout, Flatten, Dense or Activation layer in the head", found: "Rescaling")
        ) { try ModelLoader.load(path: Fixtures.path("keras3-tiny-rescaling-after.keras")) }
    }

    /// DenseKit's own ONNX export of a Rescaling model, its [1, 3, 1, 1] Mul constant claimed as [1, 1, 3, 1]
    /// (three rows instead of three channels).
    @Test func aMulOnTheInputThatIsNotPerChannelIsRefused() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let written = folder.appendingPathComponent("written.onnx").path
        let outcome = try densekit([
            "convert", Fixtures.path("keras3-tiny-rescaling.keras"), "-o", written, "--accept-deviations",
        ])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let lie = try ONNXEditing.mutated(written) { model in
            for i in 0..<Int(ONNXEditing.graph(model).pointee.n_initializer) {
                let tensorProto = ONNXEditing.initializer(model, i)
                guard ONNXEditing.name(tensorProto.pointee.name) == "input.scale" else { continue }
                ONNXEditing.setDims(tensorProto, [1, 1, 3, 1])
            }
        }
        let path = folder.appendingPathComponent("per-row.onnx").path
        try lie.write(to: URL(fileURLWithPath: path))
        let refused = try densekit(["inspect", path])
        #expect(refused.status == 2)
        #expect(
            refused.stderr
                == "error: \(path): Mul node 'input.mul': expected a per-channel constant on the input, found shape "
                + "[1, 1, 3, 1]\n")
    }

    /// Images through a preset that normalises, into a model that preprocesses its own input: said on
    /// stderr, with the flags that give it pixels (after which nothing is said).
    @Test func aPresetOnTopOfTheModelsOwnPreprocessingIsNoted() throws {
        let model = Fixtures.path("keras3-tiny-rescaling.keras")
        let images = ["--images", Fixtures.path("demo-images"), "--preset", "keras-densenet", "--size", "64"]
        let noted = try densekit(["run", model] + images)
        #expect(noted.status == 0, "\(noted.stderr)")
        #expect(
            noted.stderr.hasPrefix(
                "note: \(model) applies its own preprocessing (x * \(Self.toPlusMinusOne.scale) + -1.0 per channel"),
            "\(noted.stderr)")
        let pixels = try densekit(["run", model] + images + ["--divisor", "1", "--mean", "0,0,0", "--std", "1,1,1"])
        #expect(pixels.status == 0 && !pixels.stderr.contains("note:"), "\(pixels.stderr)")
        let plain = try densekit(["run", Fixtures.path("keras3-tiny.keras")] + images)
        #expect(plain.status == 0 && !plain.stderr.contains("note:"), "\(plain.stderr)")
    }

    @Test func inspectShowsTheTransform() throws {
        let path = Fixtures.path("keras3-tiny-rescaling.keras")
        let text = try densekit(["inspect", path])
        #expect(text.status == 0)
        // The config's scale is Python's 1 / 127.5, shown as the float32 the model computes with and as written.
        #expect(
            text.stdout.contains(
                "transform   x * \(Self.toPlusMinusOne.scale) + -1.0 per channel, before the stem "
                    + "(Rescaling 'rescaling' (scale 0.00784313725490"), "\(text.stdout)")
        let json = try densekit(["inspect", path, "--json"]).json()
        let transform = try #require((json["input"] as? [String: Any])?["transform"] as? [String: Any])
        #expect((transform["offset"] as? [Double]) == [-1, -1, -1])
        let plain = try densekit(["inspect", Fixtures.path("keras3-tiny.keras"), "--json"]).json()
        #expect((plain["input"] as? [String: Any])?["transform"] is NSNull)
    }
}
