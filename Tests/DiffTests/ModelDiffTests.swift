import DenseKit
import DenseKitExecute
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// Two copies of a model: agreeing exports agree, an altered layer is blamed, different weights diverge at the stem.
@Suite struct ModelDiffTests {
    func diff(_ modelA: DenseNet, _ modelB: DenseNet, input: String, layout: InputSpec.Layout? = nil) throws
        -> ModelDiff.Result
    {
        let modelInput = try ModelInput(try Fixtures.npy(Fixtures.path(input)), layout: layout, for: modelA)
        return try ModelDiff(modelA, modelB, threads: 2).run(
            modelInput.values, batch: modelInput.batch, height: modelInput.height, width: modelInput.width)
    }

    func load(_ name: String) throws -> DenseNet { try ModelLoader.load(path: Fixtures.path(name)) }

    @Test(arguments: [
        ("tv-tiny-legacy-opset17.onnx", "tv-tiny-dynamo-opset18.onnx", "input-64.npy"),
        ("tv-tiny-legacy-opset11-unfolded.onnx", "tv-tiny-dynamo-opset18.onnx", "input-64.npy"),
        ("keras2-tiny.h5", "keras2-tiny-tf2onnx.onnx", "input-64-nhwc.npy"),
        ("keras3-tiny.keras", "keras3-tiny.weights.h5", "input-64-nhwc.npy"),
    ])
    func twoExportsOfTheSameWeightsAgree(_ pair: (String, String, String)) throws {
        let outcome = try diff(try load(pair.0), try load(pair.1), input: pair.2)
        #expect(outcome.withinTolerance, "\(outcome.firstDivergence?.name ?? "")")
        #expect(outcome.layers.map(\.name) == (try load(pair.0)).layerNames)
        #expect(outcome.top1Agreement == 1 && outcome.top5Agreement == 1)
        #expect(outcome.output.cosine > 0.999999)
        #expect(outcome.samples.count == 2)
    }

    @Test(arguments: [(1, 0), (1, 1), (2, 1), (0, 1)])
    func anAlteredLayerIsBlamed(_ at: (block: Int, layer: Int)) throws {
        let modelA = try load("tv-tiny-legacy-opset17.onnx")
        var modelB = modelA
        for i in modelB.blocks[at.block].layers[at.layer].conv.weight.values.indices where i % 3 == 0 {
            modelB.blocks[at.block].layers[at.layer].conv.weight.values[i] *= 1.5
        }
        let outcome = try diff(modelA, modelB, input: "input-64.npy")
        let first = try #require(outcome.firstDivergence)
        #expect(first.name == "block\(at.block + 1).layer\(at.layer + 1)")
        #expect(first.divergentChannels == 0...3)
        // Its k = 4 channels sit after the block input (8 channels) and the earlier layers' channels.
        #expect(first.blockChannelOffset == 8 + 4 * at.layer)
        let before = outcome.layers.prefix { $0.name != first.name }
        #expect(before.allSatisfy { $0.withinTolerance && $0.metrics.maxAbs == 0 })
    }

    @Test func differentWeightsDivergeAtTheStem() throws {
        // Same architecture, different random initialisations (Keras 2 and Keras 3 fixtures).
        let outcome = try diff(try load("keras2-tiny.h5"), try load("keras3-tiny.h5"), input: "input-64-nhwc.npy")
        #expect(outcome.firstDivergence?.name == "stem")
        #expect(!outcome.withinTolerance)
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
        let modelA: [Float] = [100, 0, -50]
        let modelB: [Float] = [100.005, 0.001, -50]
        let metrics = modelA.withUnsafeBufferPointer { pa in modelB.withUnsafeBufferPointer { ErrorMetrics(pa, $0) } }
        #expect(abs(metrics.maxAbs - 0.005) < 1e-4)
        #expect(metrics.scale == 100.005)
        #expect(Tolerance(absolute: 0, relative: 1e-4).allows(metrics))
        #expect(!Tolerance(absolute: 0, relative: 1e-5).allows(metrics))
    }
}

/// The same on full-size DenseNet-121 files from `make fixtures-full`.
@Suite(.enabled(if: Fixtures.full != nil, "full-size fixtures not built"))
struct FullSizeDiffTests {
    func load(_ name: String) throws -> DenseNet {
        try ModelLoader.load(path: try #require(Fixtures.full) + "/" + name)
    }

    func diff(_ modelA: DenseNet, _ modelB: DenseNet, _ input: String) throws -> ModelDiff.Result {
        let modelInput = try ModelInput(
            try Fixtures.npy(try #require(Fixtures.full) + "/" + input), layout: nil, for: modelA)
        return try ModelDiff(modelA, modelB, threads: 2).run(
            modelInput.values, batch: modelInput.batch, height: modelInput.height, width: modelInput.width)
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
        let outcome = try diff(
            try load("keras2-densenet121-weights.h5"), try ModelLoader.load(path: out), "input-224-nhwc.npy")
        #expect(outcome.withinTolerance && outcome.layers.allSatisfy { $0.metrics.maxAbs == 0 })
    }

    @Test func alteredLayerIsBlamed() throws {
        let modelA = try load("densenet121-legacy-opset17.onnx")
        var modelB = modelA
        modelB.blocks[2].layers[13].conv.weight.values[100] += 0.5
        let outcome = try diff(modelA, modelB, "input-224.npy")
        #expect(outcome.firstDivergence?.name == "block3.layer14")
        #expect(outcome.layers.count == modelA.layerNames.count)
    }

    @Test func differentModelsDivergeAtTheStem() throws {
        let outcome = try diff(
            try load("keras2-densenet121.h5"), try load("keras3-densenet121.h5"), "input-224-nhwc.npy")
        #expect(outcome.firstDivergence?.name == "stem")
    }
}
