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
        + keras("keras2-tiny-avg", keras2, avgFeatures)
        + keras("keras2-tiny-max", keras2, "no classifier: 16 features (global max pool)")
        + keras("keras2-tiny-none", keras2, featureMap)
        // tf2onnx exports of the Keras 2 models (NHWC input behind a Transpose; the feature map
        // transposed back to NHWC at the end, which DenseKit outputs as NCHW).
        + keras("keras2-tiny-sigmoid14", ["-tf2onnx.onnx"], sigmoid14).map { tf2onnx($0) }
        + keras("keras2-tiny-avg", ["-tf2onnx.onnx"], avgFeatures).map { tf2onnx($0) }
        + keras("keras2-tiny-none", ["-tf2onnx.onnx"], featureMap).map { tf2onnx($0) }

    static func tf2onnx(_ c: Case) -> Case {
        var c = c
        c.reference = c.model.replacingOccurrences(of: ".onnx", with: ".out.npy")
        c.meta = c.model.replacingOccurrences(of: ".onnx", with: ".meta.json")
        return c
    }

    /// The recorded output in DenseKit's layout: a Keras feature map (N, H, W, C) becomes NCHW.
    func reference(_ c: Case) throws -> NPY.Array {
        let r = try Fixtures.npy(Fixtures.path(c.reference))
        guard r.shape.count == 4 else { return r }
        let (n, h, w, ch) = (r.shape[0], r.shape[1], r.shape[2], r.shape[3])
        var v = [Float](repeating: 0, count: r.values.count)
        for b in 0..<n {
            for y in 0..<h {
                for x in 0..<w {
                    for k in 0..<ch {
                        v[((b * ch + k) * h + y) * w + x] = r.values[((b * h + y) * w + x) * ch + k]
                    }
                }
            }
        }
        return NPY.Array(shape: [n, ch, h, w], values: v)
    }

    @Test(arguments: cases)
    func runsToTheFrameworksOutput(_ c: Case) throws {
        let net = try ModelLoader.load(path: Fixtures.path(c.model))
        #expect(net.head.summary == c.head)
        let x = try ModelInput(try Fixtures.npy(Fixtures.path(c.input)), layout: nil, for: net)
        let executor = try Executor(net, threads: 2)
        let y = try executor.run(x.values, batch: x.batch, height: x.height, width: x.width)
        let want = try reference(c)
        #expect([x.batch] + (try executor.outputShape(height: x.height, width: x.width)) == want.shape)
        #expect(relativeError(y, want.values) <= 1e-4, "\(c.model): \(relativeError(y, want.values))")
        // The plain reference executor agrees, image by image.
        let per = net.input.channels * x.height * x.width
        let outputs = y.count / x.batch
        for n in 0..<x.batch {
            let plain = ReferenceExecutor(net).run(
                image: Array(x.values[(n * per)..<((n + 1) * per)]), height: x.height, width: x.width)
            #expect(relativeError(Array(y[(n * outputs)..<((n + 1) * outputs)]), plain.output) <= 1e-5)
            #expect(plain.layers.map(\.name) == net.layerNames)
        }
    }

    @Test(arguments: cases)
    func verifiesAsItsBackboneWithTheFrameworksCounts(_ c: Case) throws {
        let net = try ModelLoader.load(path: Fixtures.path(c.model))
        let r = try Verifier().verify(net)
        let meta = try Fixtures.meta(Fixtures.path(c.meta))
        #expect(
            r.parameters.trainable == meta.trainable
                && r.parameters.withBatchNormStatistics == meta.withBatchNormStatistics,
            "\(c.model): \(r.parameters) vs \(meta.trainable), \(meta.withBatchNormStatistics)")
        // The head is reported, never a deviation: the same deviations as the backbone with the paper's head.
        let backbone = try Verifier().verify(
            ModelLoader.load(
                path: Fixtures.path(c.model.hasPrefix("tv-") ? "tv-tiny-legacy-opset17.onnx" : "keras3-tiny.h5")))
        #expect(r.deviations.filter { $0.layer != "model" } == backbone.deviations.filter { $0.layer != "model" })
        #expect(!r.deviations.contains { $0.layer.hasPrefix("head") })
        #expect(r.head.summary == c.head)
    }

    @Test(arguments: cases)
    func convertsAndDiffsThroughTheHead(_ c: Case) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let net = try ModelLoader.load(path: Fixtures.path(c.model))
        let x = try ModelInput(try Fixtures.npy(Fixtures.path(c.input)), layout: nil, for: net)
        var converter = Converter()
        converter.acceptDeviations = true
        let out = folder.appendingPathComponent("m.dnk").path
        let outcome = try converter.convert(net, source: Fixtures.path(c.model), to: out, input: x)
        #expect(outcome.validation.bitIdentical)
        let written = try ModelLoader.load(path: out)
        #expect(written.head.summary == c.head && written.layerNames == net.layerNames)
        let r = try ModelDiff(written, net).run(x.values, batch: x.batch, height: x.height, width: x.width)
        #expect(r.withinTolerance && r.layers.map(\.name) == net.layerNames)
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
