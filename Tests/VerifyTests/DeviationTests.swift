import DenseKit
import DenseKitGraph
import TestSupport
import Testing

/// Deliberately altered DenseNets fail with the deviation named by layer, check, expected and found.
@Suite struct DeviationTests {
    func densenet121() throws -> DenseNet {
        Synthetic.denseNet(try #require(ArchitectureSpec.named("densenet121")), classes: 1000, inputSize: 224)
    }

    func report(_ net: DenseNet, _ arch: String? = nil) throws -> Verifier.Report {
        try Verifier().verify(net, against: arch)
    }

    @Test func oneLayerShortInABlock() throws {
        var net = try densenet121()
        net.blocks[2].layers.removeLast()
        let verification = try report(net, "densenet121")
        #expect(!verification.matches)
        #expect(
            verification.deviations.contains(Deviation(layer: "block3", check: "layers", expected: "24", found: "23")))
        #expect(verification.deviations.map(\.description).contains("block3: layers expected 24, found 23"))
    }

    @Test func anotherGrowthRate() throws {
        var net = try densenet121()
        let layer = net.blocks[1].layers[4]
        net.blocks[1].layers[4].conv.weight.shape = [48] + layer.conv.weight.shape.dropFirst()
        let verification = try report(net)
        #expect(verification.spec.name == "densenet121")
        #expect(
            verification.deviations == [
                Deviation(layer: "block2.layer5", check: "growth rate", expected: "32", found: "48")
            ])
    }

    @Test func anotherCompression() throws {
        var net = try densenet121()
        net.transitions[1].conv.weight.shape = [384, 512, 1, 1]
        let verification = try report(net)
        #expect(
            verification.deviations == [
                Deviation(layer: "transition2", check: "output channels", expected: "256 (theta 0.5)", found: "384")
            ])
        #expect(
            verification.deviations[0].description == "transition2: output channels expected 256 (theta 0.5), found 384"
        )
    }

    @Test func withoutBottleneckTheClosestIsStillNamed() throws {
        var net = try densenet121()
        net.blocks[0].layers[0].bottleneck = nil
        let verification = try report(net)
        #expect(verification.spec.name == "densenet121")
        #expect(
            verification.deviations.contains(
                Deviation(layer: "block1.layer1", check: "bottleneck", expected: "present", found: "absent")))
    }

    @Test func anotherInputSizeIsReportedNotADeviation() throws {
        let spec = try #require(ArchitectureSpec.named("densenet121"))
        var net = Synthetic.denseNet(spec, classes: 1000, inputSize: 256)
        var verification = try report(net, "densenet121")
        #expect(verification.matches)
        #expect(
            verification.inputSize == FeatureMapSizes.Size(256, 256)
                && verification.finalMapSize == FeatureMapSizes.Size(8, 8))
        net.stem.conv.stride = 1
        verification = try report(net, "densenet121")
        #expect(verification.deviations == [Deviation(layer: "stem", check: "conv stride", expected: "2", found: "1")])
        #expect(verification.finalMapSize == FeatureMapSizes.Size(16, 16))
    }

    @Test func nanWeightIsCaughtAndLocated() throws {
        var net = try ModelLoader.load(path: Fixtures.path("tv-tiny-legacy-opset17.onnx"))
        net.blocks[1].layers[1].conv.weight.values[5] = .nan
        net.blocks[1].layers[1].conv.weight.values[6] = .infinity
        let verification = try report(net)
        let finite = verification.deviations.filter { $0.check == "finite weights" }
        #expect(finite.count == 1)
        #expect(finite.first?.layer == "block2.layer2")
        #expect(finite.first?.found.hasPrefix("2 NaN/Inf in '") == true)
    }

    @Test func nonPositiveVarianceIsCaught() throws {
        var net = try ModelLoader.load(path: Fixtures.path("tv-tiny-legacy-opset11-unfolded.onnx"))
        net.transitions[0].norm.variance.values[0] = -1
        let verification = try report(net)
        #expect(
            verification.deviations.contains {
                $0.layer == "transition1" && $0.check == "BatchNorm variance" && $0.found.hasPrefix("1 <= 0")
            })
    }

    /// A DenseNet-121 with growth rate 24 is named as a DenseNet-121 (the same stem, blocks and layers per
    /// block), not as the CIFAR DenseNet-BC with k = 24 that has fewer deviations per layer; what holds in
    /// every dense layer is one row.
    @Test func anotherGrowthRateEverywhereIsOneRowAgainstTheSameShape() throws {
        var spec = try #require(ArchitectureSpec.named("densenet121"))
        spec.growthRate = 24
        let verification = try report(Synthetic.denseNet(spec, classes: 1000, inputSize: 224))
        #expect(verification.spec.name == "densenet121")
        #expect(
            verification.deviations == [
                Deviation(layer: "all 58 dense layers", check: "growth rate", expected: "32", found: "24"),
                Deviation(layer: "all 58 dense layers", check: "bottleneck width", expected: "128", found: "96"),
            ])
    }

    /// The same finding in some dense layers only stays one row per layer.
    @Test func aFindingInSomeLayersStaysPerLayer() throws {
        var net = try densenet121()
        for index in [0, 1] {
            let layer = net.blocks[0].layers[index]
            net.blocks[0].layers[index].conv.weight.shape = [24] + layer.conv.weight.shape.dropFirst()
        }
        let verification = try report(net, "densenet121")
        #expect(
            verification.deviations.filter { $0.check == "growth rate" } == [
                Deviation(layer: "block1.layer1", check: "growth rate", expected: "32", found: "24"),
                Deviation(layer: "block1.layer2", check: "growth rate", expected: "32", found: "24"),
            ])
    }

    /// One input channel (an X-ray model) or four: reported, not a deviation.
    @Test(arguments: [1, 4])
    func inputChannelsAreReportedNotADeviation(_ channels: Int) throws {
        var net = try densenet121()
        net.stem.conv.weight.shape = [64, channels, 7, 7]
        let verification = try report(net)
        #expect(verification.matches && verification.spec.name == "densenet121", "\(verification.deviations)")
        #expect(verification.inputChannels == channels)
    }

    @Test func unknownArchitectureIsAnError() throws {
        #expect(throws: VerifyError.self) { try report(try densenet121(), "densenet122") }
    }
}
