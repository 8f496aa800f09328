import DenseKit
import DenseKitExecute
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// The executor's output on every fixture matches the reference recorded when the fixture was made
/// (onnxruntime for ONNX, Keras for .h5/.keras) to within 1e-4 of the largest reference value.
@Suite struct FixtureAccuracyTests {
    /// (model, input, reference output)
    static let tiny: [(String, String, String)] = [
        ("tv-tiny-legacy-opset11-unfolded.onnx", "input-64.npy", "tv-tiny-legacy-opset11-unfolded.out.npy"),
        ("tv-tiny-legacy-opset17.onnx", "input-64.npy", "tv-tiny-legacy-opset17.out.npy"),
        ("tv-tiny-legacy-opset17-typed.onnx", "input-64.npy", "tv-tiny-legacy-opset17-typed.out.npy"),
        ("tv-tiny-legacy-opset17-fp16.onnx", "input-64.npy", "tv-tiny-legacy-opset17-fp16.out.npy"),
        ("tv-tiny-dynamo-opset18.onnx", "input-64.npy", "tv-tiny-dynamo-opset18.out.npy"),
        // onnxruntime's extended optimisation level: com.microsoft FusedConv (Conv + Relu).
        ("tv-tiny-ort-extended.onnx", "input-64.npy", "tv-tiny-ort-extended.out.npy"),
        // Dynamic height and width, exported at 64x64 and run at 80x72 (not square, not the export's size).
        ("tv-tiny-dynamic-hw-legacy-opset17.onnx", "input-80x72.npy", "tv-tiny-dynamic-hw-legacy-opset17.out.npy"),
        ("cifar-bc-tiny-legacy-opset17.onnx", "input-32.npy", "cifar-bc-tiny-legacy-opset17.out.npy"),
        ("cifar-plain-tiny-legacy-opset17.onnx", "input-32.npy", "cifar-plain-tiny-legacy-opset17.out.npy"),
        ("keras2-tiny-tf2onnx.onnx", "input-64-nhwc.npy", "keras2-tiny-tf2onnx.out.npy"),
        ("keras2-tiny.h5", "input-64-nhwc.npy", "keras2-tiny.out.npy"),
        ("keras2-tiny-weights.h5", "input-64-nhwc.npy", "keras2-tiny.out.npy"),
        ("keras3-tiny.h5", "input-64-nhwc.npy", "keras3-tiny.out.npy"),
        ("keras3-tiny.weights.h5", "input-64-nhwc.npy", "keras3-tiny.out.npy"),
        ("keras3-tiny.keras", "input-64-nhwc.npy", "keras3-tiny.out.npy"),
        // MONAI's DenseNet class (denselayer<i>.layers.*, class_layers.out), one input channel: MONAI's output.
        ("monai-tiny.pth", "input-64-gray.npy", "monai-tiny.out.npy"),
        // timm's DenseNet class (torchvision's keys): timm's output.
        ("timm-tiny.pth", "input-64.npy", "timm-tiny.out.npy"),
        // timm's deep stem (densenet264d's), and with its blur pool (densenetblur121d's) as a whole module, a
        // traced TorchScript archive and torch's dynamo ONNX export: timm's output.
        ("timm-tiny-deep.pth", "input-64.npy", "timm-tiny-deep.out.npy"),
        // tf.lite's conversions of keras2-tiny.h5, float32 and float16 weights: TFLite's interpreter's output.
        ("keras2-tiny.tflite", "input-64-nhwc.npy", "keras2-tiny-tflite.out.npy"),
        ("keras2-tiny-f16.tflite", "input-64-nhwc.npy", "keras2-tiny-f16-tflite.out.npy"),
        // keras3-tiny.keras exported as a SavedModel and converted from it ([1, 1, 1, C] BN constants).
        ("keras3-tiny-savedmodel.tflite", "input-64-nhwc.npy", "keras3-tiny-savedmodel-tflite.out.npy"),
        // The other tf_keras layouts converted: a nested backbone with a sigmoid head, a max pool.
        ("keras2-tiny-nested-sigmoid14.tflite", "input-64-nhwc.npy", "keras2-tiny-nested-sigmoid14-tflite.out.npy"),
        ("keras2-tiny-max.tflite", "input-64-nhwc.npy", "keras2-tiny-max-tflite.out.npy"),
        ("timm-tiny-blur-module.pth", "input-64.npy", "timm-tiny-blur.out.npy"),
        ("timm-tiny-blur-traced.pt", "input-64.npy", "timm-tiny-blur.out.npy"),
        ("timm-tiny-blur-dynamo.onnx", "input-64.npy", "timm-tiny-blur.out.npy"),
    ]

    /// Both convolution modes against the framework's output (1e-4 of its largest value), and the
    /// Winograd path (`--fast`) against the plain reference executor: within 1e-5 of the largest
    /// reference value, ten times inside that bar (the condition for it to be the default).
    static func check(model: String, input: String, reference: String, threads: Int = 2) throws {
        let net = try ModelLoader.load(path: model)
        let modelInput = try ModelInput(try Fixtures.npy(input), layout: nil, for: net)
        let want = try Fixtures.npy(reference)
        #expect(want.values.count == modelInput.batch * net.classes)
        #expect(
            want.shape == [modelInput.batch]
                + (try Executor(net).outputShape(height: modelInput.height, width: modelInput.width)))
        var outputs: [ConvolutionMode: [Float]] = [:]
        for mode in ConvolutionMode.allCases {
            let executed = try Executor(net, threads: threads, mode: mode).run(
                modelInput.values, batch: modelInput.batch, height: modelInput.height, width: modelInput.width)
            #expect(relativeError(executed, want.values) <= 1e-4, "\(model) \(mode)")
            outputs[mode] = executed
        }
        let per = modelInput.values.count / modelInput.batch
        let plain = (0..<modelInput.batch).flatMap {
            ReferenceExecutor(net).run(
                image: Array(modelInput.values[($0 * per)..<(($0 + 1) * per)]), height: modelInput.height,
                width: modelInput.width
            ).output
        }
        let fast = relativeError(outputs[.fast]!, plain)
        let exact = relativeError(outputs[.exact]!, plain)
        #expect(fast <= 1e-5, "\(model): --fast is \(fast) of the largest value from the reference executor")
        print(
            """
            measured: \(URL(fileURLWithPath: model).lastPathComponent) vs the reference executor: --fast \(fast), \
            --exact \(exact)
            """
        )
    }

    @Test(arguments: tiny)
    func tinyMatchesRecordedReference(_ fixture: (String, String, String)) throws {
        try Self.check(
            model: Fixtures.path(fixture.0), input: Fixtures.path(fixture.1), reference: Fixtures.path(fixture.2))
    }

    static let full: [(String, String, String)] = [
        ("densenet121-legacy-opset11-unfolded.onnx", "input-224.npy", "densenet121-legacy-opset11-unfolded.out.npy"),
        ("densenet121-legacy-opset17.onnx", "input-224.npy", "densenet121-legacy-opset17.out.npy"),
        ("densenet121-dynamo-opset18.onnx", "input-224.npy", "densenet121-dynamo-opset18.out.npy"),
        // The ONNX model zoo's layout of the same weights (Caffe's Scale, whole-map AveragePool, 1x1 conv classifier).
        ("densenet121-zoo-opset9.onnx", "input-224.npy", "densenet121-zoo-opset9.out.npy"),
        ("keras2-densenet121-tf2onnx.onnx", "input-224-nhwc.npy", "keras2-densenet121-tf2onnx.out.npy"),
        ("keras2-densenet121.h5", "input-224-nhwc.npy", "keras2-densenet121.out.npy"),
        ("keras2-densenet121-weights.h5", "input-224-nhwc.npy", "keras2-densenet121.out.npy"),
        ("keras3-densenet121.h5", "input-224-nhwc.npy", "keras3-densenet121.out.npy"),
        ("keras3-densenet121.weights.h5", "input-224-nhwc.npy", "keras3-densenet121.out.npy"),
        ("keras3-densenet121.keras", "input-224-nhwc.npy", "keras3-densenet121.out.npy"),
        ("keras3-densenet169.keras", "input-224-nhwc.npy", "keras3-densenet169.out.npy"),
        ("keras2-densenet169-weights.h5", "input-224-nhwc.npy", "keras2-densenet169.out.npy"),
        ("densenet169-legacy-opset17.onnx", "input-224.npy", "densenet169-legacy-opset17.out.npy"),
        ("densenet201-legacy-opset17.onnx", "input-224.npy", "densenet201-legacy-opset17.out.npy"),
        ("densenet161-legacy-opset17.onnx", "input-224.npy", "densenet161-legacy-opset17.out.npy"),
        ("densenet121-sigmoid14-legacy-opset17.onnx", "input-224.npy", "densenet121-sigmoid14-legacy-opset17.out.npy"),
        ("keras3-densenet121-sigmoid14.keras", "input-224-nhwc.npy", "keras3-densenet121-sigmoid14.out.npy"),
        ("keras3-densenet121-256-softmax5.h5", "input-256-nhwc.npy", "keras3-densenet121-256-softmax5.out.npy"),
        // DenseNet-121 nested as one layer of the user's model (tf_keras Sequential; Keras 3 with pooling="avg").
        ("keras2-densenet121-nested.h5", "input-224-nhwc.npy", "keras2-densenet121-nested.out.npy"),
        ("keras3-densenet121-nested.keras", "input-224-nhwc.npy", "keras3-densenet121-nested.out.npy"),
        // DenseNet-201 nested (pooling="avg" inside it), weights only: Keras's last dense layer's values.
        ("keras2-densenet201-nested-weights.h5", "input-224-nhwc.npy", "keras2-densenet201-nested.logits.npy"),
        // PyTorch checkpoints (the same weights as the ONNX exports): torch's own outputs.
        ("densenet121.pth", "input-224.npy", "densenet121.out.npy"),
        ("densenet121-legacy.pth", "input-224.npy", "densenet121.out.npy"),
        ("densenet169.safetensors", "input-224.npy", "densenet169.out.npy"),
        ("densenet201.pth", "input-224.npy", "densenet201.out.npy"),
        ("densenet161.pth", "input-224.npy", "densenet161.out.npy"),
        ("chexnet-checkpoint.pth.tar", "input-224.npy", "chexnet-checkpoint.logits.npy"),
        // MONAI: a 1-channel, 14-output DenseNet-121, and DenseNet-264 (MONAI's own outputs).
        ("monai-densenet121.pth", "input-224-gray.npy", "monai-densenet121.out.npy"),
        ("monai-densenet264.pth", "input-224.npy", "monai-densenet264.out.npy"),
        // torchxrayvision's DenseNet-121 (one channel, 18 outputs) as a whole pickled module.
        ("xrv-densenet121-module.pth", "input-224-gray.npy", "xrv-densenet121-module.out.npy"),
        ("timm-densenet121.safetensors", "input-224.npy", "timm-densenet121.out.npy"),
        ("keras2-densenet121.tflite", "input-224-nhwc.npy", "keras2-densenet121-tflite.out.npy"),
        // timm's densenetblur121d as timm ships it: the blur pool by its architecture.
        ("timm-densenetblur121d.safetensors", "input-224.npy", "timm-densenetblur121d.out.npy"),
    ]

    @Test(.enabled(if: Fixtures.full != nil, "full-size fixtures not built (make fixtures-full)"), arguments: full)
    func fullSizeMatchesRecordedReference(_ fixture: (String, String, String)) throws {
        let folder = try #require(Fixtures.full)
        try Self.check(
            model: folder + "/" + fixture.0, input: folder + "/" + fixture.1, reference: folder + "/" + fixture.2)
    }

    /// The checkpoints verify as their architecture, with torch's parameter counts (recorded with the
    /// ONNX export of the same model).
    @Test(
        .enabled(if: Fixtures.full != nil, "full-size fixtures not built (make fixtures-full)"),
        arguments: [
            ("densenet121.pth", "densenet121"), ("densenet121-legacy.pth", "densenet121"),
            ("densenet169.safetensors", "densenet169"),
            ("densenet201.pth", "densenet201"), ("densenet161.pth", "densenet161"),
        ])
    func fullSizeCheckpointsVerifyWithTorchsCounts(_ fixture: (String, String)) throws {
        let folder = try #require(Fixtures.full)
        let report = try Verifier().verify(try ModelLoader.load(path: folder + "/" + fixture.0))
        #expect(report.matches && report.spec.name == fixture.1, "\(report.deviations)")
        let meta = try Fixtures.meta(folder + "/\(fixture.1)-legacy-opset17.meta.json")
        #expect(
            report.parameters.trainable == meta.trainable
                && report.parameters.withBatchNormStatistics == meta.withBatchNormStatistics)
    }

    /// CheXNet's shape: a DenseNet-121 backbone with a 14-class sigmoid head verifies as densenet121,
    /// with torch's own parameter count for that head (7,978,856 - 1,025,000 + 14,350).
    /// keras.applications backbones with heads of their own (at 224, and at 256): densenet121, with
    /// Keras's own counts.
    @Test(
        .enabled(if: Fixtures.full != nil, "full-size fixtures not built (make fixtures-full)"),
        arguments: [
            ("keras3-densenet121-sigmoid14.keras", "global avg pool, linear 1024 -> 14, sigmoid", [224, 224]),
            ("keras3-densenet121-256-softmax5.h5", "global avg pool, linear 1024 -> 5, softmax", [256, 256]),
        ])
    func fullSizeKerasHeadsVerifyAsDenseNet121(_ fixture: (String, String, [Int])) throws {
        let folder = try #require(Fixtures.full)
        let report = try Verifier().verify(try ModelLoader.load(path: folder + "/" + fixture.0))
        #expect(report.matches && report.spec.name == "densenet121", "\(report.deviations)")
        let meta = try Fixtures.meta(folder + "/" + fixture.0.split(separator: ".")[0] + ".meta.json")
        #expect(
            report.parameters.trainable == meta.trainable
                && report.parameters.withBatchNormStatistics == meta.withBatchNormStatistics)
        #expect(report.head.summary == fixture.1 && report.inputSize.map { [$0.height, $0.width] } == fixture.2)
    }

    /// MONAI's DenseNet-121 with one input channel and 14 outputs, its DenseNet-264 (the paper's Table 1
    /// column torchvision lacks), torchxrayvision's whole-module DenseNet-121 and timm's densenet121:
    /// their architectures, with the package's own parameter counts.
    @Test(
        .enabled(if: Fixtures.full != nil, "full-size fixtures not built (make fixtures-full)"),
        arguments: [
            ("monai-densenet121.pth", "densenet121", 1), ("monai-densenet264.pth", "densenet264", 3),
            ("xrv-densenet121-module.pth", "densenet121", 1), ("timm-densenet121.safetensors", "densenet121", 3),
        ])
    func fullSizeEcosystemDenseNetsVerifyWithTheirPackagesCounts(_ fixture: (String, String, Int)) throws {
        let folder = try #require(Fixtures.full)
        let report = try Verifier().verify(try ModelLoader.load(path: folder + "/" + fixture.0))
        #expect(report.matches && report.spec.name == fixture.1, "\(report.deviations)")
        #expect(report.inputChannels == fixture.2)
        let meta = try Fixtures.meta(folder + "/" + fixture.0.split(separator: ".")[0] + ".meta.json")
        #expect(report.parameters.trainable == meta.trainable)
        if fixture.1 == "densenet264" { #expect(meta.trainable == 33_337_704) }
    }

    @Test(.enabled(if: Fixtures.full != nil, "full-size fixtures not built (make fixtures-full)"))
    func fullSizeSigmoidHeadVerifiesAsDenseNet121() throws {
        let folder = try #require(Fixtures.full)
        let path = folder + "/densenet121-sigmoid14-legacy-opset17.onnx"
        let report = try Verifier().verify(try ModelLoader.load(path: path))
        #expect(report.matches && report.spec.name == "densenet121", "\(report.deviations)")
        #expect(report.parameters.trainable == 6_968_206)
        let meta = try Fixtures.meta(folder + "/densenet121-sigmoid14-legacy-opset17.meta.json")
        #expect(
            report.parameters.trainable == meta.trainable
                && report.parameters.withBatchNormStatistics == meta.withBatchNormStatistics)
        #expect(report.head.summary == "global avg pool, linear 1024 -> 14, sigmoid")
    }
}
