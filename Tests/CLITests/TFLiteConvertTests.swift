import DenseKit
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// `densekit convert -o X.tflite` beyond what every target gets in `ConvertTargetTests` (every source and head,
/// run by TensorFlow Lite's interpreter to the source framework's output): the converter's own layout, float16
/// weights behind DEQUANTIZE, the layer-by-layer diff against the source, what is reported and what is refused.
extension ConvertTargetTests {
    /// TFLite's operators, in order, by name.
    static func operatorNames(_ path: String) throws -> [String] {
        try TFLiteFile(Data(contentsOf: URL(fileURLWithPath: path))).operators.map {
            TFLiteFile.operatorNames[$0.builtin] ?? "\($0.builtin)"
        }
    }

    /// keras2-tiny.h5 written as TFLite has exactly the operators, in the same order, that tf.lite's converter
    /// (TensorFlow 2.21) made of the same Keras model (fixtures/keras2-tiny.tflite), in float32 and in float16;
    /// the input is `input`, NHWC [1, 64, 64, 3] with a resizable batch; and the written file diffs against the
    /// source with no difference at any layer.
    @Test func theWrittenFileIsTheConvertersLayout() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = Self.sources[1]
        for (name, converted, extra) in [
            ("k.tflite", "keras2-tiny.tflite", [String]()),
            ("k16.tflite", "keras2-tiny-f16.tflite", ["--dtype", "f16"]),
        ] {
            let out = folder.appendingPathComponent(name).path
            let outcome = try densekit(["convert", source.file, "-o", out, "--accept-deviations"] + extra)
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(try Self.operatorNames(out) == Self.operatorNames(Fixtures.path(converted)), "\(name)")
        }
        let written = try TFLiteFile(Data(contentsOf: folder.appendingPathComponent("k.tflite")))
        let input = try #require(written.inputs.first.map { written.tensors[$0] })
        #expect(input.name == "input" && input.shape == [1, 64, 64, 3] && input.shapeSignature == [-1, 64, 64, 3])
        #expect(written.tensors[written.outputs[0]].name == "output")
        #expect(
            written.description.hasPrefix("densekit \(DenseKitVersion.string) from keras2-tiny.h5 (keras-h5, sha256 "))
        #expect(written.tensors.contains { $0.name == "block2.layer1.conv1.weight" && $0.shape == [16, 1, 1, 8] })
        let diff = try densekit([
            "diff", source.file, folder.appendingPathComponent("k.tflite").path, "--input", source.input, "--json",
        ])
        #expect(diff.status == 0, "\(diff.stderr)")
        let layers = try #require(try diff.json()["layers"] as? [[String: Any]])
        #expect(layers.count == 10)
        #expect(layers.allSatisfy { ($0["maxAbs"] as? Double) == 0 }, "\(layers)")
    }

    /// `--dtype f16`: every float constant FLOAT16 behind a DEQUANTIZE, read back as float16 weights; the
    /// conversion's own validation and TensorFlow Lite's interpreter both within 3e-3 of the source's output.
    @Test func float16WeightsBehindDequantize() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var checks: [Check] = []
        for (i, source) in [Self.sources[1], Self.sources[3], Self.heads[0]].enumerated() {
            let out = folder.appendingPathComponent("f16-\(i).tflite").path
            let outcome = try densekit([
                "convert", source.file, "-o", out, "--dtype", "f16", "--accept-deviations", "--json",
            ])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            let validation = try #require(try outcome.json()["validation"] as? [String: Any])
            #expect((validation["maxRel"] as? Double ?? 1) <= 3e-3 && validation["top1Agreement"] as? Double == 1)
            let net = try ModelLoader.load(path: out)
            #expect(net.stem.conv.weight.storedDType == .f16 && net.head.dense[0].linear.weight.storedDType == .f16)
            let file = try TFLiteFile(Data(contentsOf: URL(fileURLWithPath: out)))
            let stored = file.tensors.filter { $0.buffer != 0 && file.buffers[$0.buffer].count > 0 }
            #expect(stored.filter { $0.type == TFLiteFile.int32 }.count == 3)  // the stem's PADs, the pool's axes
            #expect(stored.allSatisfy { $0.type == TFLiteFile.float16 || $0.type == TFLiteFile.int32 })
            #expect(
                file.operators.prefix { $0.builtin == 6 }.count == stored.count - 3,
                "one DEQUANTIZE per float16 constant, all first")
            checks.append(Self.check(source, .tflite, .tflite, file: out, in: folder))
        }
        try Frameworks.run(.tflite, checks.map(\.run), in: folder)
        for check in checks {
            let error = relativeError(
                try NPY.read(path: check.run.output).values, try NPY.read(path: check.reference).values)
            #expect(error <= 3e-3, "\(check.run.file): \(error)")
        }
    }

    /// A source without a fixed size becomes the architecture's (interpreter.resize_tensor_input changes it,
    /// as the other tests do); bf16 is refused.
    @Test func inputSizeIsReportedAndBF16Refused() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let tv = Self.sources[3].file
        let out = folder.appendingPathComponent("tv.tflite").path
        let outcome = try densekit(["convert", tv, "-o", out, "--accept-deviations", "--json"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let conventions = try #require(try outcome.json()["conventions"] as? [[String: Any]])
        #expect(
            conventions.contains {
                $0["subject"] as? String == "input size"
                    && $0["detail"] as? String
                        == "the source takes any size; the TFLite model is 224x224 (the architecture's), and "
                        + "interpreter.resize_tensor_input changes it"
            }, "\(conventions)")
        let net = try ModelLoader.load(path: out)
        #expect(net.input.height == 224 && net.input.width == 224 && net.input.layout == .nhwc)
        let refused = try densekit([
            "convert", tv, "-o", folder.appendingPathComponent("b.tflite").path, "--dtype", "bf16",
            "--accept-deviations",
        ])
        #expect(refused.status == 2)
        #expect(
            refused.stderr
                == "error: \(tv): cannot write tflite: weights are written as f32 or f16, not bf16 (--dtype)\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["tv.tflite"])
    }
}
