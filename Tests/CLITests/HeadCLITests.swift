import DenseKit
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// Fine-tuned heads and feature extractors through the command line: inspect names the head, run
/// writes the head's output shape, diff compares through the head's layers, convert keeps the head
/// (in a `.dnk` 2.0 where a 1.0 reader would misread it), and a head that is not a chain is refused.
@Suite struct HeadCLITests {
    let input = Fixtures.path("input-64.npy"), nhwc = Fixtures.path("input-64-nhwc.npy")

    @Test func inspectNamesTheHead() throws {
        let outcome = try densekit(["inspect", Fixtures.path("tv-tiny-sigmoid14-legacy-opset17.onnx")])
        #expect(
            outcome.status == 0
                && outcome.stdout.contains("head        BN 16, ReLU, global avg pool, linear 16 -> 14, sigmoid\n"))
        let features = try densekit(["inspect", Fixtures.path("keras3-tiny-avg.keras")])
        #expect(features.stdout.contains("head        BN 16, ReLU, no classifier: 16 features (global avg pool)\n"))
        let weights = try densekit(["inspect", Fixtures.path("keras2-tiny-sigmoid14-weights.h5")])
        #expect(weights.stdout.contains("linear 16 -> 14, activation unknown (the file stores none)"))
        #expect(
            weights.stdout.contains(
                "note        a weights-only file stores no activations: the output is the last dense layer's values"))
        let head = try #require(
            try densekit(["inspect", Fixtures.path("tv-tiny-mlp-dynamo-opset18.onnx"), "--json"]).json()["head"]
                as? [String: Any])
        #expect(
            head["pool"] as? String == "average" && head["activation"] as? String == "sigmoid"
                && head["classes"] as? Int == 5)
        let dense = try #require(head["dense"] as? [[String: Any]])
        #expect(
            dense.map { $0["outFeatures"] as? Int } == [12, 5]
                && dense.map { $0["activation"] as? String } == ["relu", "sigmoid"])
    }

    @Test func verifyReportsTheHeadAndTheInputSize() throws {
        let outcome = try densekit(["verify", Fixtures.path("keras3-tiny-80-softmax5.keras"), "--json"])
        let parsed = try outcome.json()
        #expect(parsed["inputSize"] as? [Int] == [80, 80] && parsed["finalMapSize"] as? [Int] == [5, 5])
        #expect(
            (parsed["head"] as? [String: Any])?["description"] as? String == "global avg pool, linear 16 -> 5, softmax")
        let deviations = try #require(parsed["deviations"] as? [[String: String]])
        #expect(!deviations.contains { $0["layer"]?.hasPrefix("head") == true || $0["check"] == "input size" })
    }

    @Test func runWritesTheHeadsOutputShape() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("y.npy").path
        for (model, x, shape) in [
            ("keras3-tiny-none.h5", nhwc, [2, 16, 4, 4]), ("keras3-tiny-max.keras", nhwc, [2, 16]),
            ("tv-tiny-sigmoid14-dynamo-opset18.onnx", input, [2, 14]),
        ] {
            let outcome = try densekit(["run", Fixtures.path(model), "--input", x, "--output", out, "--json"])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(try outcome.json()["outputShape"] as? [Int] == shape)
            #expect(try NPY.read(path: out).shape == shape)
        }
    }

    @Test func diffComparesThroughTheHead() throws {
        let pathA = Fixtures.path("tv-tiny-mlp-legacy-opset17.onnx")
        let pathB = Fixtures.path("tv-tiny-mlp-dynamo-opset18.onnx")
        let outcome = try densekit(["diff", pathA, pathB, "--input", input, "--json"])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let layers = try #require(try outcome.json()["layers"] as? [[String: Any]])
        #expect(layers.suffix(2).map { $0["name"] as? String } == ["head.dense1", "head"])
        // Another head on the same backbone is another architecture, named.
        let other = try densekit([
            "diff", pathA, Fixtures.path("tv-tiny-sigmoid14-legacy-opset17.onnx"), "--input", input,
        ])
        #expect(other.status == 2)
        #expect(
            other.stderr.contains(
                """
                head is global avg pool, linear 16 -> 12, relu, linear 12 -> 5, sigmoid vs global avg pool, \
                linear 16 -> 14, sigmoid
                """
            ))
    }

    /// The format version in a `.dnk`'s header (bytes 8 and 10).
    func version(_ path: String) throws -> [UInt8] {
        let fileData = try Data(contentsOf: URL(fileURLWithPath: path))
        return [fileData[8], fileData[10]]
    }

    @Test func convertKeepsTheHead() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        for (model, x, major) in [
            ("tv-tiny-mlp-legacy-opset17.onnx", input, 2), ("keras3-tiny-none.keras", nhwc, 2),
            ("keras3-tiny-sigmoid14.h5", nhwc, 2), ("keras3-tiny.keras", nhwc, 1),
        ] {
            let out = folder.appendingPathComponent(model + ".dnk").path
            let outcome = try densekit([
                "convert", Fixtures.path(model), "-o", out, "--accept-deviations", "--input", x, "--json",
            ])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect((try outcome.json()["validation"] as? [String: Any])?["bitIdentical"] as? Bool == true)
            #expect(try version(out) == [UInt8(major), major == 1 ? 1 : 0], "\(model)")
            let pathA = folder.appendingPathComponent("a.npy").path
            let pathB = folder.appendingPathComponent("b.npy").path
            #expect(try densekit(["run", Fixtures.path(model), "--input", x, "--output", pathA]).status == 0)
            #expect(try densekit(["run", out, "--input", x, "--output", pathB]).status == 0)
            #expect(try Data(contentsOf: URL(fileURLWithPath: pathA)) == Data(contentsOf: URL(fileURLWithPath: pathB)))
            let inspect = try densekit(["inspect", out, "--json"]).json()["head"] as? [String: Any]
            let source = try densekit(["inspect", Fixtures.path(model), "--json"]).json()["head"] as? [String: Any]
            #expect(inspect?["description"] as? String == source?["description"] as? String)
        }
    }

    @Test func aHeadThatIsNotAChainIsRefused() throws {
        typealias E = ONNXEditing
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        func write(_ name: String, _ data: Data) throws -> String { try Fixtures.write(data, as: name, in: folder) }
        // A second branch: the Sigmoid reads the pooled features instead of the Gemm.
        let branched = try write(
            "branched.onnx",
            try E.mutated("tv-tiny-sigmoid14-legacy-opset17.onnx") { m in
                let gemm = E.node(m, try E.firstNode(m, "Gemm"))
                let sigmoid = E.node(m, try E.firstNode(m, "Sigmoid"))
                E.setString(&sigmoid.pointee.input[0], E.name(gemm.pointee.input[0]))
            })
        try expectUsageError(
            ["inspect", branched], file: branched,
            mentions:
                "expected one chain of Gemm/MatMul layers and activations up to the graph output, found 2 nodes reading"
        )
        // An activation DenseKit does not run.
        let hard = try write(
            "hard.onnx",
            try E.mutated("tv-tiny-sigmoid14-legacy-opset17.onnx") { m in
                E.setString(&E.node(m, try E.firstNode(m, "Sigmoid")).pointee.op_type, "HardSigmoid")
            })
        try expectUsageError(
            ["verify", hard], file: hard,
            mentions:
                """
                HardSigmoid node '/classifier/classifier.1/Sigmoid': expected an operator of a DenseNet (Conv, \
                BatchNormalization, Relu, MaxPool, AveragePool, Concat; in the head GlobalAveragePool, \
                GlobalMaxPool, Gemm, MatMul, Sigmoid, Softmax, Tanh), found HardSigmoid (opset 17)
                """
        )
        // Keras: an activation DenseKit does not run, and a layer a head does not have.
        let swish = folder.appendingPathComponent("swish.h5").path
        try HDF5Editing.editedCopy("keras3-tiny-sigmoid14.h5", to: swish) { f in
            try HDF5Editing.editConfig(f) { name, c in if name == "dense" { c["activation"] = "swish" } }
        }
        try expectUsageError(
            ["run", swish, "--input", nhwc, "--output", folder.appendingPathComponent("y.npy").path], file: swish,
            mentions: "layer 'dense' (Dense): expected activation linear, relu, sigmoid, softmax or tanh, found 'swish'"
        )
        let conv = folder.appendingPathComponent("conv-head.h5").path
        try HDF5Editing.editedCopy("keras3-tiny-sigmoid14.h5", to: conv) { f in
            try HDF5Editing.editLayers(f) { entry in
                if entry["class_name"] as? String == "GlobalAveragePooling2D" {
                    entry["class_name"] = "LayerNormalization"
                }
            }
        }
        try expectUsageError(
            ["inspect", conv], file: conv,
            mentions:
                """
                layer 'global_average_pooling2d' (LayerNormalization): expected a global pool, Dropout, Flatten, \
                Dense or Activation layer in the head, found LayerNormalization
                """
        )
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("y.npy").path))
    }
}
