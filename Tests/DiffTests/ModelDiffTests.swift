import DenseKit
import DenseKitExecute
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// Two copies of a model: agreeing exports agree, an altered layer is blamed, different weights diverge at the stem.
@Suite struct ModelDiffTests {
    func diff(_ a: DenseNet, _ b: DenseNet, input: String, layout: InputSpec.Layout? = nil) throws -> ModelDiff.Result {
        let x = try ModelInput(try Fixtures.npy(Fixtures.path(input)), layout: layout, for: a)
        return try ModelDiff(a, b, threads: 2).run(x.values, batch: x.batch, height: x.height, width: x.width)
    }

    func load(_ name: String) throws -> DenseNet { try ModelLoader.load(path: Fixtures.path(name)) }

    @Test(arguments: [
        ("tv-tiny-legacy-opset17.onnx", "tv-tiny-dynamo-opset18.onnx", "input-64.npy"),
        ("tv-tiny-legacy-opset11-unfolded.onnx", "tv-tiny-dynamo-opset18.onnx", "input-64.npy"),
        ("keras2-tiny.h5", "keras2-tiny-tf2onnx.onnx", "input-64-nhwc.npy"),
        ("keras3-tiny.keras", "keras3-tiny.weights.h5", "input-64-nhwc.npy"),
    ])
    func twoExportsOfTheSameWeightsAgree(_ c: (String, String, String)) throws {
        let r = try diff(try load(c.0), try load(c.1), input: c.2)
        #expect(r.withinTolerance, "\(r.firstDivergence?.name ?? "")")
        #expect(r.layers.map(\.name) == (try load(c.0)).layerNames)
        #expect(r.top1Agreement == 1 && r.top5Agreement == 1)
        #expect(r.output.cosine > 0.999999)
        #expect(r.samples.count == 2)
    }

    @Test(arguments: [(1, 0), (1, 1), (2, 1), (0, 1)])
    func anAlteredLayerIsBlamed(_ at: (block: Int, layer: Int)) throws {
        let a = try load("tv-tiny-legacy-opset17.onnx")
        var b = a
        for i in b.blocks[at.block].layers[at.layer].conv.weight.values.indices where i % 3 == 0 {
            b.blocks[at.block].layers[at.layer].conv.weight.values[i] *= 1.5
        }
        let r = try diff(a, b, input: "input-64.npy")
        let first = try #require(r.firstDivergence)
        #expect(first.name == "block\(at.block + 1).layer\(at.layer + 1)")
        #expect(first.divergentChannels == 0...3)
        // Its k = 4 channels sit after the block input (8 channels) and the earlier layers' channels.
        #expect(first.blockChannelOffset == 8 + 4 * at.layer)
        let before = r.layers.prefix { $0.name != first.name }
        #expect(before.allSatisfy { $0.withinTolerance && $0.metrics.maxAbs == 0 })
    }

    @Test func differentWeightsDivergeAtTheStem() throws {
        // Same architecture, different random initialisations (Keras 2 and Keras 3 fixtures).
        let r = try diff(try load("keras2-tiny.h5"), try load("keras3-tiny.h5"), input: "input-64-nhwc.npy")
        #expect(r.firstDivergence?.name == "stem")
        #expect(!r.withinTolerance)
    }

    @Test func differentArchitecturesNameWhatDoesNotCorrespond() throws {
        #expect {
            try ModelDiff(try load("tv-tiny-legacy-opset17.onnx"), try load("cifar-plain-tiny-legacy-opset17.onnx"))
        } throws: { error in
            // Every difference is named, and only those (both grow by 4: that is not listed).
            "\(error)"
                == """
                the two models are not the same architecture: stem has 8 vs 16 channels; stem is conv 7x7/2 + \
                pool vs conv 3x3/1; transition1 outputs 8 vs 24 channels; transition2 outputs 8 vs 32 channels
                """
        }
    }

    @Test func toleranceIsLayerScaled() {
        let a: [Float] = [100, 0, -50]
        let b: [Float] = [100.005, 0.001, -50]
        let m = a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { ErrorMetrics(pa, $0) } }
        #expect(abs(m.maxAbs - 0.005) < 1e-4)
        #expect(m.scale == 100.005)
        #expect(Tolerance(absolute: 0, relative: 1e-4).allows(m))
        #expect(!Tolerance(absolute: 0, relative: 1e-5).allows(m))
    }
}

/// The same on full-size DenseNet-121 files from `make fixtures-full`.
@Suite(.enabled(if: Fixtures.full != nil, "full-size fixtures not built"))
struct FullSizeDiffTests {
    func load(_ name: String) throws -> DenseNet {
        try ModelLoader.load(path: try #require(Fixtures.full) + "/" + name)
    }

    func diff(_ a: DenseNet, _ b: DenseNet, _ input: String) throws -> ModelDiff.Result {
        let x = try ModelInput(try Fixtures.npy(try #require(Fixtures.full) + "/" + input), layout: nil, for: a)
        return try ModelDiff(a, b, threads: 2).run(x.values, batch: x.batch, height: x.height, width: x.width)
    }

    @Test func exportsOfTheSameWeightsAgree() throws {
        #expect(
            try diff(
                try load("densenet121-legacy-opset17.onnx"), try load("densenet121-dynamo-opset18.onnx"),
                "input-224.npy"
            ).withinTolerance)
        #expect(
            try diff(
                try load("densenet121-legacy-opset11-unfolded.onnx"), try load("densenet121-legacy-opset17.onnx"),
                "input-224.npy"
            ).withinTolerance)
        #expect(
            try diff(
                try load("keras2-densenet121.h5"), try load("keras2-densenet121-tf2onnx.onnx"), "input-224-nhwc.npy"
            ).withinTolerance)
        #expect(
            try diff(
                try load("keras3-densenet121.keras"), try load("keras3-densenet121.weights.h5"), "input-224-nhwc.npy"
            ).withinTolerance)
    }

    @Test func sourceAndNativeAgree() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("d.dnk").path
        _ = try Converter().convert(source: try #require(Fixtures.full) + "/keras2-densenet121-weights.h5", to: out)
        let r = try diff(
            try load("keras2-densenet121-weights.h5"), try ModelLoader.load(path: out), "input-224-nhwc.npy")
        #expect(r.withinTolerance && r.layers.allSatisfy { $0.metrics.maxAbs == 0 })
    }

    @Test func alteredLayerIsBlamed() throws {
        let a = try load("densenet121-legacy-opset17.onnx")
        var b = a
        b.blocks[2].layers[13].conv.weight.values[100] += 0.5
        let r = try diff(a, b, "input-224.npy")
        #expect(r.firstDivergence?.name == "block3.layer14")
        #expect(r.layers.count == a.layerNames.count)
    }

    @Test func differentModelsDivergeAtTheStem() throws {
        let r = try diff(try load("keras2-densenet121.h5"), try load("keras3-densenet121.h5"), "input-224-nhwc.npy")
        #expect(r.firstDivergence?.name == "stem")
    }
}
