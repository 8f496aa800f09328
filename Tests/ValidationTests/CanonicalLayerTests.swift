import DenseKit
import DenseKitGraph
import TestSupport
import Testing

/// Canonical layer names: made in one place, parsed back to the same layer, and nothing else parses.
@Suite struct CanonicalLayerTests {
    @Test func namesAreTheContractsNames() {
        #expect(CanonicalLayer.stem.name == "stem")
        #expect(CanonicalLayer.denseLayer(block: 2, layer: 12).name == "block2.layer12")
        #expect(CanonicalLayer.transition(3).name == "transition3")
        #expect(CanonicalLayer.headDense(1).name == "head.dense1")
        #expect(CanonicalLayer.head.name == "head")
        #expect(CanonicalLayer.block(4).name == "block4")
        #expect("\(CanonicalLayer.denseLayer(block: 1, layer: 6))" == "block1.layer6")
    }

    @Test func namesParseBack() {
        let layers: [CanonicalLayer] = [
            .stem, .block(1), .denseLayer(block: 1, layer: 1), .denseLayer(block: 4, layer: 32), .transition(2),
            .headDense(3), .head,
        ]
        for layer in layers { #expect(CanonicalLayer(name: layer.name) == layer, "\(layer)") }
    }

    @Test(arguments: [
        "", "stem.conv", "block0.layer1", "block1.layer0", "block01.layer1", "block1.layer01", "block1.layer",
        "blockX.layer1", "block1.layer1.bottleneck", "block1.layer1x", "transition", "transition0", "transition-1",
        "head.dense0", "head.dense", "head.classifier", "Head", "block1.", "block.layer1", "block1.layer１",
    ])
    func otherTextDoesNotParse(_ text: String) {
        #expect(CanonicalLayer(name: text) == nil)
    }

    /// The one walk, on a model read from a file: the layers in execution order, each named once.
    @Test func theWalkOfATinyDenseNet() throws {
        let net = try ModelLoader.load(path: Fixtures.path("tv-tiny-legacy-opset17.onnx"))
        #expect(
            net.layerNames == [
                "stem", "block1.layer1", "block1.layer2", "transition1", "block2.layer1", "block2.layer2",
                "transition2", "block3.layer1", "block3.layer2", "head",
            ])
        #expect(net.canonicalLayers.map(\.name) == net.layerNames)
        #expect(net.canonicalLayers.allSatisfy { CanonicalLayer(name: $0.name) == $0 })
    }
}
