import DenseKit
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// Every Keras layout imports into the same canonical graph, with the values h5py read (after the
/// HWIO -> OIHW and (in, out) -> (out, in) changes, recorded in the .meta.json by the fixture script).
@Suite struct KerasImportTests {
    static let cases: [(file: String, meta: String, format: ModelSource.Format, producer: String, fixedInput: Bool)] = [
        ("keras2-tiny.h5", "keras2-tiny.meta.json", .kerasH5, "keras 2.", true),
        ("keras2-tiny-weights.h5", "keras2-tiny.meta.json", .kerasWeightsH5, "keras 2.", false),
        ("keras3-tiny.h5", "keras3-tiny.meta.json", .kerasH5, "keras 3.", true),
        ("keras3-tiny.weights.h5", "keras3-tiny.meta.json", .kerasV3Weights, "keras 3", false),
        ("keras3-tiny.keras", "keras3-tiny.meta.json", .kerasArchive, "keras 3.", true),
    ]

    @Test(arguments: cases)
    func structureAndWeights(
        _ fixture: (file: String, meta: String, format: ModelSource.Format, producer: String, fixedInput: Bool)
    ) throws {
        let net = try ModelLoader.load(path: Fixtures.path(fixture.file))
        #expect(net.source.format == fixture.format)
        #expect(net.source.producer.hasPrefix(fixture.producer))
        #expect(net.input.layout == .nhwc)
        #expect(net.input.height == (fixture.fixedInput ? 64 : nil))
        #expect(net.stem.outChannels == 8)
        #expect(net.stem.conv.pads == [3, 3, 3, 3] && net.stem.conv.stride == 2)
        #expect(net.stem.pool == Pool2D(kind: .max, kernel: 3, stride: 2, pads: [1, 1, 1, 1]))
        #expect(net.blocks.map(\.layers.count) == [2, 2, 2])
        #expect(
            net.blocks.flatMap(\.layers).allSatisfy {
                $0.growth == 4 && $0.bottleneck?.conv.outChannels == 16 && $0.conv.pads == [1, 1, 1, 1]
            })
        #expect(net.transitions.map(\.conv.outChannels) == [8, 8])
        #expect(net.head.softmax)
        #expect(net.classes == 10)
        #expect(net.stem.norm?.epsilon == Float(1.001e-5))
        let meta = try Fixtures.meta(Fixtures.path(fixture.meta))
        let first = net.blocks[0].layers[0]
        try expectSample(net.stem.conv.weight, meta.samples["stem.conv.weight"])
        try expectSample(try #require(first.bottleneck).conv.weight, meta.samples["block1.layer1.firstConv.weight"])
        try expectSample(try #require(net.head.classifier).weight, meta.samples["head.classifier.weight"])
    }

    @Test func layerNamesRecoveredFromOrderMatchStoredNames() throws {
        let path = Fixtures.path("keras3-tiny.weights.h5")
        let named = try KerasImporter.load(path: path)
        let recovered = try KerasImporter.load(path: path, trustStoredNames: false)
        #expect(recovered.source.notes.contains { $0.contains("recovered") })
        #expect(named.tensors.map(\.values) == recovered.tensors.map(\.values))
        #expect(named.tensors.map(\.shape) == recovered.tensors.map(\.shape))
    }

    @Test func notADenseNetIsNamed() throws {
        let error = #expect(throws: ImportError.self) {
            try ModelLoader.load(path: Fixtures.path("keras3-not-densenet.h5"))
        }
        guard case .structure(.file, let problem)? = error else {
            Issue.record("\(String(describing: error))")
            return
        }
        #expect(problem.hasPrefix("not a Keras DenseNet: no layer conv1_conv (found "), "\(problem)")
    }
}
