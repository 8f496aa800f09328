import DenseKit
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

extension ConvertTargetTests {
    /// timm's deep stem, with and without its blur pool, to ONNX (onnxruntime runs it, BNs folded or not),
    /// TFLite (the blur pool a MIRROR_PAD and a DEPTHWISE_CONV_2D; TensorFlow Lite's interpreter runs it),
    /// safetensors under timm's own keys (timm's DenseNet class loads it strictly and runs it) and `.dnk`
    /// (4.0, read back by DenseKit), each to timm's output; the Keras layouts refuse it naming the stem.
    @Test(arguments: [
        ("timm-tiny-blur-module.pth", "timm-tiny-blur.out.npy", "blur"),
        ("timm-tiny-deep.pth", "timm-tiny-deep.out.npy", "deep"),
    ])
    func timmsDeepStemReachesONNXSafetensorsAndDNK(_ fixture: (String, String, String)) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = Source(
            file: Fixtures.path(fixture.0), reference: Fixtures.path(fixture.1), input: Fixtures.path("input-64.npy"),
            layout: "nchw", dense: [(5, "linear")])
        var model = source.model()
        model["timm"] = fixture.2
        var checks: [Check] = []
        for (name, extra) in [("deep.onnx", [String]()), ("folded.onnx", ["--fold-bn"])] {
            try Self.convert(source.file, name, in: folder, extra)
            checks.append(
                Self.check(source, .onnx, .onnxruntime, file: folder.appendingPathComponent(name).path, in: folder))
        }
        try Self.convert(source.file, "deep.tflite", in: folder)
        checks.append(
            Self.check(source, .tflite, .tflite, file: folder.appendingPathComponent("deep.tflite").path, in: folder))
        let written = try Self.convert(source.file, "deep.safetensors", in: folder)
        let aa = fixture.2 == "blur" ? " and blur pool" : ""
        let loader =
            "timm.models.densenet.DenseNet(growth_rate=4, block_config=(2, 2, 2), bn_size=4, stem_type='deep'"
            + (fixture.2 == "blur" ? ", aa_layer=timm.layers.BlurPool2d" : "") + ", num_classes=5)"
        #expect(
            (written["conventions"] as? [[String: Any]])?.contains {
                $0["subject"] as? String == "model"
                    && $0["detail"] as? String
                        == "stem: torchvision.models.DenseNet cannot build timm's deep stem\(aa); the keys are timm's "
                        + "own (features.conv0 to conv2, norm0 to norm2, then torchvision's names): load into \(loader)"
            } == true, "\(written["conventions"] ?? "")")
        checks.append(
            Self.check(
                source, .safetensors, .torch, file: folder.appendingPathComponent("deep.safetensors").path, in: folder,
                model: model))
        // The safetensors file records the blur (a state_dict cannot), and DenseKit reads it back so.
        let readBack = try ModelLoader.load(path: folder.appendingPathComponent("deep.safetensors").path)
        #expect((readBack.stem.blur != nil) == (fixture.2 == "blur") && readBack.stem.deep.count == 2)
        try Self.convert(source.file, "deep.dnk", in: folder)
        let dnk = folder.appendingPathComponent("deep.dnk").path
        let header = try Data(contentsOf: URL(fileURLWithPath: dnk)).prefix(12)
        #expect(header.suffix(4).elementsEqual([4, 0, 0, 0]), "version 4.0: \(Array(header.suffix(4)))")
        let out = dnk + ".out.npy"
        let ran = try densekit(["run", dnk, "--input", source.input, "--output", out])
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(relativeError(try NPY.read(path: out).values, try NPY.read(path: source.reference).values) <= 1e-4)
        for (keras, format) in [("deep.h5", "keras-h5"), ("deep.weights.h5", "keras-weights-h5")] {
            let target = folder.appendingPathComponent(keras).path
            let refused = try densekit(["convert", source.file, "-o", target, "--accept-deviations"])
            #expect(refused.status == 2 && !FileManager.default.fileExists(atPath: target))
            #expect(
                refused.stderr.hasPrefix(
                    "error: \(source.file): cannot write \(format): "
                        + "stem: timm's deep stem (conv 3x3/2 3->4, BN, ReLU, conv 3x3/1 4->4, BN, ReLU, conv 3x3/1 "
                        + "4->8, BN, ReLU, max pool "),
                "\(refused.stderr)")
        }
        try Self.verify(checks, in: folder)
    }

    /// timm's densenetblur121d (as timm ships it) to ONNX and TFLite, which onnxruntime and TensorFlow Lite's
    /// interpreter run to timm's output.
    @Test(.enabled(if: Fixtures.full != nil, "full-size fixtures not built (make fixtures-full)"))
    func densenetblur121dReachesONNX() throws {
        let full = try #require(Fixtures.full)
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = Source(
            file: full + "/timm-densenetblur121d.safetensors", reference: full + "/timm-densenetblur121d.out.npy",
            input: full + "/input-224.npy", layout: "nchw", size: 224, dense: [(1000, "linear")])
        try Self.convert(source.file, "blur121d.onnx", in: folder)
        try Self.convert(source.file, "blur121d.tflite", in: folder)
        try Self.verify(
            [
                Self.check(
                    source, .onnx, .onnxruntime, file: folder.appendingPathComponent("blur121d.onnx").path, in: folder),
                Self.check(
                    source, .tflite, .tflite, file: folder.appendingPathComponent("blur121d.tflite").path, in: folder),
            ],
            in: folder)
    }
}
