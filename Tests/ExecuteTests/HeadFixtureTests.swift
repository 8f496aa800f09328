import DenseKit
import DenseKitExecute
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// The heads people ship: fine-tuned classifiers (CheXNet's 14-way sigmoid), dropout and two-layer
/// heads, and backbones used as feature extractors (global average, global max or no pool), made by
/// torch (both exporters) and Keras 2 and 3 (every layout), at 64x64 and 80x80. Each runs to the
/// output its framework recorded, names its head, and counts its parameters as the framework does.
@Suite struct HeadFixtureTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var model: String
        var input: String
        /// The framework's output; for a weights-only file, the last dense layer's values before its
        /// activation (what such a file can reproduce), recorded by Keras from its own weights.
        var reference: String
        var head: String
        /// The framework's parameter counts.
        var meta: String
        var testDescription: String { model }
    }

    static let sigmoid14 = "global avg pool, linear 16 -> 14, sigmoid"
    static let unknown14 = "global avg pool, linear 16 -> 14, activation unknown (the file stores none)"
    static let avgFeatures = "no classifier: 16 features (global avg pool)"
    static let featureMap = "no classifier: 16 features per position (the feature map, no pool)"

    static func torch(_ prefix: String, _ variant: String, _ head: String) -> Case {
        Case(
            model: "\(prefix)-\(variant).onnx", input: "input-64.npy", reference: "\(prefix)-\(variant).out.npy",
            head: head,
            meta: "\(prefix)-\(variant).meta.json")
    }

    /// A Keras model in every layout it was saved in; weights-only layouts compared with the logits.
    static func keras(_ prefix: String, _ layouts: [String], _ head: String, weightsHead: String? = nil, size: Int = 64)
        -> [Case]
    {
        layouts.map { layout in
            let weightsOnly = layout.contains("weights")
            return Case(
                model: prefix + layout, input: "input-\(size)-nhwc.npy",
                reference: prefix + (weightsOnly && weightsHead != nil ? ".logits.npy" : ".out.npy"),
                head: weightsOnly ? weightsHead ?? head : head, meta: prefix + ".meta.json")
        }
    }

    static let keras3 = [".h5", ".keras", ".weights.h5"], keras2 = [".h5", "-weights.h5"]

    static let cases: [Case] =
        [
            torch("tv-tiny-sigmoid14", "legacy-opset17", sigmoid14),
            torch("tv-tiny-sigmoid14", "dynamo-opset18", sigmoid14),
            torch("tv-tiny-dropout3", "legacy-opset17", "global avg pool, linear 16 -> 3, logits"),
            torch("tv-tiny-dropout3", "dynamo-opset18", "global avg pool, linear 16 -> 3, logits"),
            torch("tv-tiny-mlp", "legacy-opset17", "global avg pool, linear 16 -> 12, relu, linear 12 -> 5, sigmoid"),
            torch("tv-tiny-mlp", "dynamo-opset18", "global avg pool, linear 16 -> 12, relu, linear 12 -> 5, sigmoid"),
            torch("tv-tiny-features", "legacy-opset17", avgFeatures),
        ]
        + keras("keras3-tiny-sigmoid14", keras3, sigmoid14, weightsHead: unknown14)
        + keras("keras3-tiny-activation14", keras3, sigmoid14, weightsHead: unknown14)
        + keras("keras3-tiny-avg", keras3, avgFeatures)
        + keras("keras3-tiny-max", keras3, "no classifier: 16 features (global max pool)")
        + keras("keras3-tiny-none", keras3, featureMap)
        + keras(
            "keras3-tiny-80-softmax5", keras3, "global avg pool, linear 16 -> 5, softmax",
            weightsHead: "global avg pool, linear 16 -> 5, activation unknown (the file stores none)", size: 80)
        + keras("keras3-tiny-mlp", [".h5", ".keras"], "global max pool, linear 16 -> 12, relu, linear 12 -> 3, tanh")
        + keras("keras2-tiny-sigmoid14", keras2, sigmoid14, weightsHead: unknown14)
        // The backbone nested as one layer of the user's Sequential or functional model.
        + keras("keras3-tiny-nested-sigmoid14", keras3, sigmoid14, weightsHead: unknown14)
        + keras("keras2-tiny-nested-sigmoid14", keras2, sigmoid14, weightsHead: unknown14)
        + keras(
            "keras3-tiny-nested-max5", keras3, "global max pool, linear 16 -> 5, softmax",
            weightsHead: "global max pool, linear 16 -> 5, activation unknown (the file stores none)")
        + keras("keras2-tiny-avg", keras2, avgFeatures)
        + keras("keras2-tiny-max", keras2, "no classifier: 16 features (global max pool)")
        + keras("keras2-tiny-none", keras2, featureMap)
        // tf2onnx exports of the Keras 2 models (NHWC input behind a Transpose; the feature map
        // transposed back to NHWC at the end, which DenseKit outputs as NCHW).
        + keras("keras2-tiny-sigmoid14", ["-tf2onnx.onnx"], sigmoid14).map { tf2onnx($0) }
        + keras("keras2-tiny-avg", ["-tf2onnx.onnx"], avgFeatures).map { tf2onnx($0) }
        + keras("keras2-tiny-none", ["-tf2onnx.onnx"], featureMap).map { tf2onnx($0) }

    static func tf2onnx(_ fixtureCase: Case) -> Case {
        var fixtureCase = fixtureCase
        fixtureCase.reference = fixtureCase.model.replacingOccurrences(of: ".onnx", with: ".out.npy")
        fixtureCase.meta = fixtureCase.model.replacingOccurrences(of: ".onnx", with: ".meta.json")
        return fixtureCase
    }

    /// The recorded output in DenseKit's layout: a Keras feature map (N, H, W, C) becomes NCHW.
    func reference(_ fixtureCase: Case) throws -> NPY.Array {
        let stored = try Fixtures.npy(Fixtures.path(fixtureCase.reference))
        guard stored.shape.count == 4 else { return stored }
        let (batch, height, width, ch) = (stored.shape[0], stored.shape[1], stored.shape[2], stored.shape[3])
        var reordered = [Float](repeating: 0, count: stored.values.count)
        for b in 0..<batch {
            for results in 0..<height {
                for modelInput in 0..<width {
                    for k in 0..<ch {
                        reordered[((b * ch + k) * height + results) * width + modelInput] =
                            stored.values[((b * height + results) * width + modelInput) * ch + k]
                    }
                }
            }
        }
        return NPY.Array(shape: [batch, ch, height, width], values: reordered)
    }

    @Test(arguments: cases)
    func runsToTheFrameworksOutput(_ fixtureCase: Case) throws {
        let net = try ModelLoader.load(path: Fixtures.path(fixtureCase.model))
        #expect(net.head.summary == fixtureCase.head)
        let modelInput = try ModelInput(try Fixtures.npy(Fixtures.path(fixtureCase.input)), layout: nil, for: net)
        let executor = try Executor(net, threads: 2)
        let results = try executor.run(
            modelInput.values, batch: modelInput.batch, height: modelInput.height, width: modelInput.width)
        let want = try reference(fixtureCase)
        #expect(
            [modelInput.batch] + (try executor.outputShape(height: modelInput.height, width: modelInput.width))
                == want.shape)
        #expect(
            relativeError(results, want.values) <= 1e-4, "\(fixtureCase.model): \(relativeError(results, want.values))")
        // The plain reference executor agrees, image by image.
        let per = net.input.channels * modelInput.height * modelInput.width
        let outputs = results.count / modelInput.batch
        for batch in 0..<modelInput.batch {
            let plain = ReferenceExecutor(net).run(
                image: Array(modelInput.values[(batch * per)..<((batch + 1) * per)]), height: modelInput.height,
                width: modelInput.width)
            #expect(relativeError(Array(results[(batch * outputs)..<((batch + 1) * outputs)]), plain.output) <= 1e-5)
            #expect(plain.layers.map(\.name) == net.layerNames)
        }
    }

    @Test(arguments: cases)
    func verifiesAsItsBackboneWithTheFrameworksCounts(_ fixtureCase: Case) throws {
        let net = try ModelLoader.load(path: Fixtures.path(fixtureCase.model))
        let stored = try Verifier().verify(net)
        let meta = try Fixtures.meta(Fixtures.path(fixtureCase.meta))
        #expect(
            stored.parameters.trainable == meta.trainable
                && stored.parameters.withBatchNormStatistics == meta.withBatchNormStatistics,
            "\(fixtureCase.model): \(stored.parameters) vs \(meta.trainable), \(meta.withBatchNormStatistics)")
        // The head is reported, never a deviation: the same deviations as the backbone with the paper's head.
        let backbone = try Verifier().verify(
            ModelLoader.load(
                path: Fixtures.path(
                    fixtureCase.model.hasPrefix("tv-") ? "tv-tiny-legacy-opset17.onnx" : "keras3-tiny.h5")))
        #expect(stored.deviations.filter { $0.layer != "model" } == backbone.deviations.filter { $0.layer != "model" })
        #expect(!stored.deviations.contains { $0.layer.hasPrefix("head") })
        #expect(stored.head.summary == fixtureCase.head)
    }

    @Test(arguments: cases)
    func convertsAndDiffsThroughTheHead(_ fixtureCase: Case) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let net = try ModelLoader.load(path: Fixtures.path(fixtureCase.model))
        let modelInput = try ModelInput(try Fixtures.npy(Fixtures.path(fixtureCase.input)), layout: nil, for: net)
        var converter = Converter()
        converter.acceptDeviations = true
        let out = folder.appendingPathComponent("m.dnk").path
        let outcome = try converter.convert(net, source: Fixtures.path(fixtureCase.model), to: out, input: modelInput)
        #expect(outcome.validation.bitIdentical)
        let written = try ModelLoader.load(path: out)
        #expect(written.head.summary == fixtureCase.head && written.layerNames == net.layerNames)
        let stored = try ModelDiff(written, net).run(
            modelInput.values, batch: modelInput.batch, height: modelInput.height, width: modelInput.width)
        #expect(stored.withinTolerance && stored.layers.map(\.name) == net.layerNames)
    }

    @Test func theCanonicalNamesOfATwoLayerHead() throws {
        let net = try ModelLoader.load(path: Fixtures.path("tv-tiny-mlp-legacy-opset17.onnx"))
        #expect(net.layerNames.suffix(3) == ["block3.layer2", "head.dense1", "head"])
        let single = try ModelLoader.load(path: Fixtures.path("tv-tiny-sigmoid14-legacy-opset17.onnx"))
        #expect(single.layerNames.suffix(2) == ["block3.layer2", "head"])
    }

    @Test func aWeightsOnlyFileWithTwoDenseLayersIsRefused() throws {
        #expect(
            throws: ImportError.mismatch(
                .part("head"),
                expected:
                    """
                    one dense layer in a weights-only file (it stores no activations, so the one between two \
                    dense layers is unknown)
                    """,
                found: "2; read the full model (.h5 or .keras) instead")
        ) { try ModelLoader.load(path: Fixtures.path("keras3-tiny-mlp.weights.h5")) }
    }
}
