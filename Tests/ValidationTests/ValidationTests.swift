import DenseKit
import DenseKitExecute
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// `DenseNet.validate()`, rule by rule, on real graphs changed in code: each lie is refused with
/// the layer or tensor, what was expected and what was found. The files that carry such lies are in
/// the CLI's lies suite; here are also the rules an importer's own checks stop before the gate.
@Suite struct ValidationTests {
    /// The folded torchvision export (stem conv with a bias) and the Keras one (every BN kept).
    let torch = try! ModelLoader.load(path: Fixtures.path("tv-tiny-legacy-opset17.onnx"))
    let keras = try! ModelLoader.load(path: Fixtures.path("keras3-tiny.h5"))

    func expectRefused(_ net: DenseNet, _ error: ImportError, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(throws: error, sourceLocation: sourceLocation) { try net.validate() }
        // The executor's plan stands on the same gate, whoever built the graph.
        #expect(throws: error, sourceLocation: sourceLocation) { try Executor(net) }
    }

    /// A validation mismatch at `subject`.
    func mismatch(_ subject: ImportSubject, _ expected: String, _ found: String) -> ImportError {
        .mismatch(subject, expected: expected, found: found)
    }

    func stemConv(_ role: String, _ name: String) -> ImportSubject {
        .weight(of: .layer(.stem, part: "conv"), role: role, name: name)
    }

    @Test func anErrorRendersItsSubjectThenWhatIsWrong() {
        let subject = ImportSubject.weight(
            of: .layer(.denseLayer(block: 2, layer: 3), part: "conv"), role: "weight", name: "w")
        #expect(
            ImportError.mismatch(subject, expected: "12 input channels", found: "11").description
                == "block2.layer3.conv: weight 'w': expected 12 input channels, found 11")
        #expect(ImportError.malformed(.tensor("t"), problem: "rank 9").description == "tensor 't': rank 9")
        #expect(ImportError.malformed("empty file").description == "empty file")
        #expect(ImportError.malformed("empty file") == .malformed(.file, problem: "empty file"))
        #expect(ImportSubject.kerasLayer("dense", className: "Dense").description == "layer 'dense' (Dense)")
        #expect(ImportSubject.pickle(byte: 7).description == "pickle at byte 7")
    }

    func vector(_ name: String, _ count: Int) -> Tensor {
        Tensor(name: name, shape: [count], values: [Float](repeating: 1, count: count))
    }

    @Test func theFixturesPass() throws {
        for name in [
            "tv-tiny-legacy-opset17.onnx", "tv-tiny-legacy-opset11-unfolded.onnx",
            "cifar-plain-tiny-legacy-opset17.onnx",
            "cifar-bc-tiny-legacy-opset17.onnx", "keras2-tiny-tf2onnx.onnx", "keras2-tiny-weights.h5",
            "keras3-tiny.keras",
        ] {
            #expect(throws: Never.self, "\(name)") { try ModelLoader.load(path: Fixtures.path(name)).validate() }
        }
    }

    @Test func tensorsHoldExactlyWhatTheirShapeSays() {
        var net = torch
        let name = net.stem.conv.weight.name
        net.stem.conv.weight = Tensor(name: name, shape: [8, 3, 7, 7], values: [Float](repeating: 0, count: 100))
        expectRefused(net, mismatch(stemConv("tensor", name), "1176 values for shape [8, 3, 7, 7]", "100"))
        net.stem.conv.weight = Tensor(name: name, shape: [1 << 40, 1 << 40, 1, 1], values: [])
        expectRefused(
            net,
            mismatch(
                stemConv("tensor", name), "dims from 1 to 2^31-1", "shape [1099511627776, 1099511627776, 1, 1]"))
        net.stem.conv.weight = Tensor(name: name, shape: [8, 3, 7], values: [Float](repeating: 0, count: 168))
        expectRefused(net, mismatch(stemConv("tensor", name), "4 dims", "shape [8, 3, 7]"))
    }

    @Test func biasesAndBatchNormVectorsMatchTheChannels() {
        var net = torch
        net.stem.conv.bias = vector("b", 7)
        expectRefused(net, mismatch(stemConv("bias", "b"), "8 values (one per channel)", "7"))
        net = keras
        net.blocks[0].layers[0].norm.variance = vector("v", 9)
        expectRefused(
            net,
            mismatch(
                .weight(of: .layer(.denseLayer(block: 1, layer: 1), part: "norm"), role: "variance", name: "v"),
                "8 values (one per channel)", "9"))
        net = keras
        net.head.dense[0].linear.bias = vector("fc.b", 11)
        expectRefused(
            net, mismatch(.weight(of: .layer(.head), role: "bias", name: "fc.b"), "10 values (one per channel)", "11"))
    }

    @Test func epsilonsAreFiniteAndPositive() {
        for (epsilon, shown) in [(Float(-1), "-1.0"), (0, "0.0"), (.nan, "nan"), (.infinity, "inf")] {
            var net = keras
            net.transitions[1].norm.epsilon = epsilon
            expectRefused(net, mismatch(.layer(.transition(2), part: "norm"), "a finite epsilon > 0", shown))
        }
    }

    @Test func stridesKernelsAndPadsAreBounded() {
        var net = torch
        net.stem.conv.stride = -1
        expectRefused(net, mismatch(.layer(.stem, part: "conv"), "stride 1 to 16", "-1"))
        net = torch
        net.stem.conv.pads = [3, 3, 3]
        expectRefused(
            net, mismatch(.layer(.stem, part: "conv"), "4 pads from 0 to 6 (below the kernel 7)", "[3, 3, 3]"))
        net = torch
        net.stem.pool?.pads = [3, 3, 3, 3]
        expectRefused(
            net, mismatch(.layer(.stem, part: "pool"), "4 pads from 0 to 2 (below the kernel 3)", "[3, 3, 3, 3]"))
        net = torch
        net.transitions[0].pool.kernel = 0
        expectRefused(net, mismatch(.layer(.transition(1), part: "pool"), "pool size 1 to 31", "0"))
        net = torch
        net.transitions[0].pool.stride = 0
        expectRefused(net, mismatch(.layer(.transition(1), part: "pool"), "pool stride 1 to 16", "0"))
    }

    @Test func everyLayerReadsTheRunningConcatenation() throws {
        var net = keras
        // block1.layer2 reads 8 + 4 = 12 channels; give its BatchNorm 11.
        let original = net.blocks[0].layers[1].norm
        net.blocks[0].layers[1].norm = BatchNorm(
            gamma: vector("g", 11), beta: vector("b", 11), mean: vector("m", 11), variance: vector("v", 11),
            epsilon: original.epsilon)
        expectRefused(
            net,
            mismatch(
                .weight(of: .layer(.denseLayer(block: 1, layer: 2), part: "norm"), role: "gamma", name: "g"),
                "12 values (one per channel)", "11"))
        net = keras
        let weight = try #require(net.blocks[0].layers[1].bottleneck?.conv.weight)
        net.blocks[0].layers[1].bottleneck?.conv.weight = Tensor(
            name: weight.name, shape: [16, 11, 1, 1], values: [Float](repeating: 0, count: 176))
        expectRefused(
            net,
            mismatch(
                .weight(
                    of: .layer(.denseLayer(block: 1, layer: 2), part: "bottleneck.conv"), role: "weight",
                    name: weight.name),
                "12 input channels", "11"))
        net = keras
        let fc = net.head.dense[0].linear.weight
        net.head.dense[0].linear.weight = Tensor(
            name: fc.name, shape: [10, 15], values: [Float](repeating: 0, count: 150))
        expectRefused(
            net,
            mismatch(
                .weight(of: .layer(.head), role: "weight", name: fc.name), "16 in-features (the final channels)", "15"))
    }

    @Test func blocksAndTransitionsAlternate() {
        var net = torch
        net.transitions.removeLast()
        expectRefused(net, mismatch(.part("transitions"), "2 (one between each pair of blocks)", "1"))
        net = torch
        net.blocks[1].layers = []
        expectRefused(net, mismatch(.layer(.block(2)), "at least one dense layer", "none"))
    }

    @Test func theDeclaredInputIsBounded() {
        var net = torch
        net.input.channels = 4
        expectRefused(net, mismatch(.input("input"), "3 channels (what the stem conv reads)", "4"))
        net = torch
        net.input.batch = 0
        expectRefused(net, mismatch(.input("input"), "batch from 1 to 1048576", "0"))
        net = torch
        net.input.width = 16_385
        expectRefused(net, mismatch(.input("input"), "width from 1 to 16384", "16385"))
        net = torch
        (net.input.height, net.input.width) = (8, 8)
        expectRefused(net, mismatch(.layer(.transition(2)), "a map of at least 1x1", "0x0 for a 8x8 input"))
    }
}

/// The rules of a deep, anti-aliased stem (timm's), on the tiny blurred net changed in code.
@Suite struct DeepStemValidationTests {
    let net = try! ModelLoader.load(path: Fixtures.path("timm-tiny-blur-module.pth"))

    @Test func aDeepConvReadingOtherChannelsThanTheConvBeforeItIsRefused() {
        var lying = net
        let weight = lying.stem.deep[1].conv.weight
        lying.stem.deep[1].conv.weight = Tensor(
            name: weight.name, shape: [8, 3, 3, 3], values: Array(repeating: 0, count: 8 * 27))
        #expect(
            throws: ImportError.mismatch(
                .weight(of: .layer(.stem, part: "deep2.conv"), role: "weight", name: weight.name),
                expected: "4 input channels", found: "3")
        ) { try lying.validate() }
    }

    @Test func aDeepConvThatChangesTheMapSizeIsRefused() {
        var lying = net
        lying.stem.deep[0].conv.stride = 2
        #expect(
            throws: ImportError.mismatch(
                .layer(.stem, part: "deep1.conv"),
                expected: "stride 1 and pads summing to 2 per axis (a size-preserving conv, for the concatenation)",
                found: "stride 2, pads [1, 1, 1, 1]")
        ) { try lying.validate() }
    }

    @Test func aBlurOfSideOneOrStrideZeroIsRefused() {
        for blur in [BlurPool2D(kernel: 1, stride: 2), BlurPool2D(kernel: 3, stride: 0)] {
            var lying = net
            lying.stem.blur = blur
            #expect(
                throws: ImportError.mismatch(
                    .layer(.stem, part: "blur"), expected: "a blur of side 2 to 7, stride 1 to 16",
                    found: "side \(blur.kernel), stride \(blur.stride)")
            ) { try lying.validate() }
        }
    }

    /// Reflection needs more rows and columns than it pads: a 1x1 map before the blur is refused, not read
    /// outside the map.
    @Test func anInputTooSmallForTheReflectionIsRefused() throws {
        #expect(
            throws: ImportError.mismatch(
                .layer(.stem, part: "blur"), expected: "a map of more than 1 rows and columns",
                found: "1x1 for a 2x2 input")
        ) { try FeatureMapSizes(net, height: 2, width: 2) }
        // At 3x3 the blur has its 2x2 map (and makes 1x1 of it); the first transition is what runs out.
        #expect(
            throws: ImportError.mismatch(
                .layer(.transition(1)), expected: "a map of at least 1x1", found: "0x0 for a 3x3 input")
        ) { try FeatureMapSizes(net, height: 3, width: 3) }
    }
}
