import DenseKit
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// The transfer-learning pattern: a keras.applications DenseNet (include_top=False) as one layer of the
/// user's Sequential or functional model, made by tf_keras and Keras 3 and saved in every layout. Each
/// reads to the flat model's canonical graph with the values Keras saved (outputs are checked by
/// HeadFixtureTests, conversions by ConvertTargetTests); two backbones or a layer between the
/// backbone's blocks are refused by name.
@Suite struct KerasNestedTests {
    static let files = [
        "keras3-tiny-nested-sigmoid14.keras", "keras3-tiny-nested-sigmoid14.h5",
        "keras3-tiny-nested-sigmoid14.weights.h5", "keras2-tiny-nested-sigmoid14.h5",
        "keras2-tiny-nested-sigmoid14-weights.h5", "keras3-tiny-nested-max5.keras", "keras3-tiny-nested-max5.h5",
        "keras3-tiny-nested-max5.weights.h5",
    ]

    @Test(arguments: files)
    func readsAsTheFlatModelWithKerassWeights(_ file: String) throws {
        let net = try ModelLoader.load(path: Fixtures.path(file))
        let flat = try ModelLoader.load(path: Fixtures.path("keras3-tiny-sigmoid14.keras"))
        #expect(net.layerNames == flat.layerNames)
        #expect(net.blocks.map(\.layers.count) == [2, 2, 2] && net.transitions.map(\.conv.outChannels) == [8, 8])
        #expect(net.stem.conv.pads == [3, 3, 3, 3] && net.stem.pool?.pads == [1, 1, 1, 1])
        let nestedName = file.hasSuffix(".weights.h5") ? "functional" : "densenet121"
        let note = "the backbone is nested in the model as its layer '\(nestedName)'; the layers after it are the head"
        #expect(net.source.notes.contains(note), "\(net.source.notes)")
        let meta = try Fixtures.meta(
            Fixtures.path(
                file.replacingOccurrences(of: "-weights.h5", with: ".h5").replacingOccurrences(
                    of: ".weights.h5", with: ".h5"
                ).replacingOccurrences(of: ".keras", with: ".h5").replacingOccurrences(of: ".h5", with: ".meta.json")))
        try expectSample(net.stem.conv.weight, meta.samples["stem.conv.weight"])
        try expectSample(
            try #require(net.blocks[0].layers[0].bottleneck).conv.weight, meta.samples["block1.layer1.firstConv.weight"]
        )
        try expectSample(try #require(net.head.classifier).weight, meta.samples["head.classifier.weight"])
        // Keras lists a nested model's BN moving statistics after all its kernels: each BN got its own.
        #expect(net.stem.norm?.mean.count == 8 && net.head.norm.variance.count == 16)
    }

    /// tf_keras's DenseNet-201 (pooling="avg" inside it) nested in a Sequential, saved weights only: it
    /// verifies as densenet201 with the head reported, and says what a weights-only file cannot tell.
    @Test(.enabled(if: Fixtures.full != nil, "full-size fixtures not built (make fixtures-full)"))
    func aFullSizeNestedWeightsFileVerifiesAsItsBackbone() throws {
        let path = try #require(Fixtures.full) + "/keras2-densenet201-nested-weights.h5"
        let net = try ModelLoader.load(path: path)
        let report = try Verifier().verify(net)
        #expect(report.matches && report.spec.name == "densenet201", "\(report.deviations)")
        #expect(net.head.summary == "global avg pool, linear 1920 -> 5, activation unknown (the file stores none)")
        #expect(
            net.source.notes.contains(
                "no pooling layer named in the file: a global average pool assumed before the dense layers"))
        #expect(
            net.source.notes.contains(
                "the backbone is nested in the model as its layer 'densenet201'; the layers after it are the head"))
    }

    @Test func namesRecoveredFromANestedWeightsFileMatchStoredNames() throws {
        let path = Fixtures.path("keras3-tiny-nested-sigmoid14.weights.h5")
        let named = try KerasImporter.load(path: path)
        let recovered = try KerasImporter.load(path: path, trustStoredNames: false)
        #expect(recovered.source.notes.contains { $0.contains("recovered") })
        #expect(named.tensors.map(\.values) == recovered.tensors.map(\.values))
    }

    @Test func twoBackbonesAreRefusedNamingTheSecond() throws {
        #expect(
            throws: ImportError.mismatch(
                .kerasLayer("densenet121_b"), expected: "one nested model, the backbone 'densenet121'",
                found: "a second nested model")
        ) { try ModelLoader.load(path: Fixtures.path("keras3-tiny-two-backbones.keras")) }
    }

    /// What Keras lets users build and DenseKit refuses: exit 2 and one line naming the layer.
    @Test(arguments: [
        ("keras3-tiny-two-backbones.keras", "layer 'densenet121_b': expected one nested model"),
        ("keras3-tiny-negative-variance.keras", "layer 'normalization_1' (Normalization): expected variances of 0"),
        ("keras3-tiny-rescaling-after.keras", "layer 'rescaling_1' (Rescaling): expected a global pool, Dropout"),
    ])
    func refusalsAreOneLineNamingTheLayer(_ refusal: (String, String)) throws {
        let path = Fixtures.path(refusal.0)
        let outcome = try densekit(["verify", path])
        #expect(outcome.status == 2 && outcome.stdout.isEmpty)
        #expect(outcome.stderr.hasPrefix("error: \(path): \(refusal.1)"), "\(outcome.stderr)")
        #expect(outcome.stderr.filter { $0 == "\n" }.count == 1)
    }

    @Test func aLayerBetweenBlocksIsRefusedByName() throws {
        let outcome = try densekit(["inspect", Fixtures.path("keras3-tiny-between-blocks.keras")])
        #expect(outcome.status == 2)
        #expect(
            outcome.stderr
                == """
                error: \(Fixtures.path("keras3-tiny-between-blocks.keras")): layer 'between_blocks' (Activation): \
                expected only keras.applications DenseNet layers before the final 'relu' (and Rescaling or \
                Normalization before the stem), found Activation inside the backbone

                """)
    }

    /// A nested group that lies about its layers: it lists a conv kernel it does not hold.
    @Test func aNestedGroupMissingAWeightIsNamed() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("missing.h5").path
        try HDF5Editing.editedCopy("keras2-tiny-nested-sigmoid14.h5", to: path) { file in
            #expect(HDF5Editing.deleteLink(file, "model_weights/densenet121/conv2_block1_1_conv/kernel:0"))
        }
        #expect(
            throws: ImportError.malformed(
                .kerasLayer("densenet121"), problem: "missing dataset 'conv2_block1_1_conv/kernel:0'")
        ) { try ModelLoader.load(path: path) }
    }
}
