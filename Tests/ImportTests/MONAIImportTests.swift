import DenseKit
import DenseKitExecute
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// MONAI's DenseNets (`monai.networks.nets`, spatial_dims=2): state_dicts with `denselayer<i>.layers.*` and
/// `class_layers.out`, read as the canonical graph and run to MONAI's own output; a 3-D one refused naming
/// its 5-D weight.
@Suite struct MONAIImportTests {
    /// MONAI's DenseNet class scaled down, one input channel, 3 classes (fixture: MONAI 1.6.1).
    @Test func aTinyMONAIDenseNetRunsToMONAIsOutput() throws {
        let net = try ModelLoader.load(path: Fixtures.path("monai-tiny.pth"))
        #expect(net.blocks.map(\.layers.count) == [2, 2, 2])
        #expect(net.stem.conv.inChannels == 1 && net.classes == 3)
        #expect(net.head.summary == "global avg pool, linear 16 -> 3, logits")
        #expect(net.source.notes.contains("MONAI's DenseNet keys ('denselayer<i>.layers.*', 'class_layers.out')"))
        let meta = try Fixtures.meta(Fixtures.path("monai-tiny.meta.json"))
        try expectSample(net.stem.conv.weight, meta.samples["stem.conv.weight"])
        let first = try #require(net.blocks[0].layers[0].bottleneck)
        try expectSample(first.conv.weight, meta.samples["block1.layer1.firstConv.weight"])
        try expectSample(try #require(net.head.classifier).weight, meta.samples["head.classifier.weight"])
        #expect(net.parameterCount.trainable == meta.trainable)
        let input = try ModelInput(try Fixtures.npy(Fixtures.path("input-64-gray.npy")), layout: nil, for: net)
        for mode in ConvolutionMode.allCases {
            let outputs = try Executor(net, threads: 2, mode: mode).run(
                input.values, batch: input.batch, height: input.height, width: input.width)
            #expect(relativeError(outputs, try Fixtures.npy(Fixtures.path("monai-tiny.out.npy")).values) <= 1e-4)
        }
    }

    /// torchvision's tiny state_dict with its keys renamed the way MONAI names them is the same graph.
    @Test func monaisKeysAreTorchvisionsKeys() throws {
        let torchvision = try ModelLoader.load(path: Fixtures.path("tv-tiny.safetensors"))
        let renamed = try SafetensorsEditing.rewritten("tv-tiny.safetensors") { entries in
            entries = Dictionary(
                uniqueKeysWithValues: entries.map { key, entry in
                    let monai = key.replacingOccurrences(
                        of: #"(denselayer\d+)\."#, with: "$1.layers.", options: .regularExpression
                    ).replacingOccurrences(of: "classifier.", with: "class_layers.out.")
                    return (monai, entry)
                })
            #expect(entries.keys.contains("features.denseblock1.denselayer1.layers.conv1.weight"))
        }
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let net = try ModelLoader.load(path: try Fixtures.write(renamed, as: "monai.safetensors", in: folder))
        #expect(net.layerNames == torchvision.layerNames)
        #expect(net.tensors.map(\.values) == torchvision.tensors.map(\.values))
        #expect(net.tensors.map(\.shape) == torchvision.tensors.map(\.shape))
    }

    /// MONAI's 3-D DenseNet (Conv3d: 5-D weights) is refused at its stem, naming the tensor and why.
    @Test func aThreeDimensionalDenseNetIsRefusedByName() throws {
        #expect(
            throws: ImportError.unsupported(
                .tensor("features.conv0.weight"),
                problem: "a 5-D conv weight, shape [4, 1, 7, 7, 7]: 3-D DenseNets (MONAI's spatial_dims=3) are not "
                    + "supported, only 2-D ones")
        ) {
            try ModelLoader.load(path: Fixtures.path("monai-tiny-3d.pth"))
        }
        let path = Fixtures.path("monai-tiny-3d.pth")
        let outcome = try densekit(["inspect", path])
        #expect(outcome.status == 2)
        #expect(
            outcome.stderr
                == "error: \(path): tensor 'features.conv0.weight': a 5-D conv weight, shape [4, 1, 7, 7, 7]: "
                + "3-D DenseNets (MONAI's spatial_dims=3) are not supported, only 2-D ones\n")
    }
}
