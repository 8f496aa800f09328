import DenseKit
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// Every committed ONNX fixture imports into the structure its exporter was given, with the weight
/// values onnx + numpy read from the same file (recorded in the fixture's .meta.json).
@Suite struct ONNXImportTests {
    struct Case: Sendable, CustomStringConvertible {
        var file: String
        var stemFilters: Int
        var blocks: [Int]
        var growth: Int
        var bottleneck: Int?
        var layout: InputSpec.Layout = .nchw
        var stemFolded: Bool
        var softmax = false
        var dtypes = ["f32"]
        var description: String { file }
    }

    static let cases: [Case] = [
        Case(
            file: "tv-tiny-legacy-opset11-unfolded.onnx", stemFilters: 8, blocks: [2, 2, 2], growth: 4, bottleneck: 16,
            stemFolded: false),
        Case(
            file: "tv-tiny-legacy-opset17.onnx", stemFilters: 8, blocks: [2, 2, 2], growth: 4, bottleneck: 16,
            stemFolded: true),
        Case(
            file: "tv-tiny-legacy-opset17-typed.onnx", stemFilters: 8, blocks: [2, 2, 2], growth: 4, bottleneck: 16,
            stemFolded: true),
        Case(
            file: "tv-tiny-legacy-opset17-fp16.onnx", stemFilters: 8, blocks: [2, 2, 2], growth: 4, bottleneck: 16,
            stemFolded: true,
            dtypes: ["f16", "f32"]),
        Case(
            file: "tv-tiny-dynamo-opset18.onnx", stemFilters: 8, blocks: [2, 2, 2], growth: 4, bottleneck: 16,
            stemFolded: true),
        Case(
            file: "cifar-bc-tiny-legacy-opset17.onnx", stemFilters: 8, blocks: [2, 2, 2], growth: 4, bottleneck: 16,
            stemFolded: false),
        Case(
            file: "cifar-plain-tiny-legacy-opset17.onnx", stemFilters: 16, blocks: [2, 2, 2], growth: 4,
            bottleneck: nil, stemFolded: false),
        Case(
            file: "keras2-tiny-tf2onnx.onnx", stemFilters: 8, blocks: [2, 2, 2], growth: 4, bottleneck: 16,
            layout: .nhwc,
            stemFolded: true, softmax: true),
    ]

    @Test(arguments: cases)
    func structure(_ fixtureCase: Case) throws {
        let net = try ModelLoader.load(path: Fixtures.path(fixtureCase.file))
        #expect(net.source.format == .onnx)
        #expect(net.stem.outChannels == fixtureCase.stemFilters)
        #expect(net.stem.normFolded == fixtureCase.stemFolded)
        #expect(net.blocks.map(\.layers.count) == fixtureCase.blocks)
        #expect(net.blocks.allSatisfy { $0.layers.allSatisfy { $0.growth == fixtureCase.growth } })
        #expect(
            net.blocks.flatMap(\.layers).map { $0.bottleneck?.conv.outChannels }
                == [Int?](repeating: fixtureCase.bottleneck, count: 6))
        #expect(net.transitions.count == 2)
        #expect(net.input.layout == fixtureCase.layout)
        #expect(net.head.softmax == fixtureCase.softmax)
        #expect(net.classes == 10)
        #expect(net.storedDTypes == fixtureCase.dtypes)
        // Channels flow: each block adds layers x growth, each transition halves (BC) or keeps (plain).
        for (b, block) in net.blocks.enumerated() {
            #expect(block.outChannels == block.inChannels + fixtureCase.blocks[b] * fixtureCase.growth)
            if b < net.transitions.count {
                #expect(net.transitions[b].conv.inChannels == block.outChannels)
                #expect(net.blocks[b + 1].inChannels == net.transitions[b].conv.outChannels)
            }
        }
    }

    @Test(arguments: cases)
    func weightsMatchWhatNumpyRead(_ fixtureCase: Case) throws {
        let net = try ModelLoader.load(path: Fixtures.path(fixtureCase.file))
        let meta = try Fixtures.meta(
            Fixtures.path(fixtureCase.file.replacingOccurrences(of: ".onnx", with: ".meta.json")))
        let firstLayer = net.blocks[0].layers[0]
        try expectSample(net.stem.conv.weight, meta.samples["stem.conv.weight"])
        try expectSample(
            firstLayer.bottleneck?.conv.weight ?? firstLayer.conv.weight, meta.samples["block1.layer1.firstConv.weight"]
        )
        try expectSample(try #require(net.head.classifier).weight, meta.samples["head.classifier.weight"])
    }

    @Test func opsetAndProducerAreReported() throws {
        let net = try ModelLoader.load(path: Fixtures.path("tv-tiny-dynamo-opset18.onnx"))
        #expect(net.source.opset == 18)
        #expect(net.source.producer.hasPrefix("pytorch 2."))
        #expect(net.input.batch == 2 && net.input.height == 64 && net.input.width == 64)
        let dynamic = try ModelLoader.load(path: Fixtures.path("tv-tiny-legacy-opset17.onnx"))
        #expect(dynamic.input.batch == nil)
        #expect(dynamic.source.opset == 17)
    }

    @Test func foldedAndUnfoldedExportsHoldTheSameFunction() throws {
        let folded = try ModelLoader.load(path: Fixtures.path("tv-tiny-legacy-opset17.onnx"))
        let unfolded = try ModelLoader.load(path: Fixtures.path("tv-tiny-legacy-opset11-unfolded.onnx"))
        #expect(folded.stem.norm == nil && unfolded.stem.norm != nil)
        #expect(folded.blocks[0].layers[0].bottleneck?.normFolded == true)
        #expect(unfolded.blocks[0].layers[0].bottleneck?.norm != nil)
        // Unfolded weights times the BN scale are the folded weights.
        let bn = try #require(unfolded.stem.norm)
        let (scale, _) = bn.affine()
        let per = unfolded.stem.conv.weight.count / unfolded.stem.outChannels
        let refolded = unfolded.stem.conv.weight.values.enumerated().map { $0.element * scale[$0.offset / per] }
        #expect(relativeError(folded.stem.conv.weight.values, refolded) < 1e-5)
    }
}

func expectSample(_ tensor: Tensor, _ sample: FixtureMeta.Sample?, sourceLocation: SourceLocation = #_sourceLocation)
    throws
{
    let stored = try #require(sample, sourceLocation: sourceLocation)
    #expect(tensor.shape == stored.shape, "tensor '\(tensor.name)'", sourceLocation: sourceLocation)
    for (i, v) in stored.first.enumerated() {
        #expect(
            abs(Double(tensor.values[i]) - v) <= 1e-6 * max(1, abs(v)), "tensor '\(tensor.name)'[\(i)]",
            sourceLocation: sourceLocation)
    }
    let sum = tensor.values.reduce(0.0) { $0 + Double($1) }
    #expect(
        abs(sum - stored.sum) <= 1e-4 * max(1, abs(stored.sum)), "tensor '\(tensor.name)' sum \(sum) vs \(stored.sum)",
        sourceLocation: sourceLocation)
}
