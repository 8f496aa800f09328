import DenseKit
import DenseKitExecute
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// The SIMD executor against the plain reference executor (no folding, explicit concat, conv before
/// pool) on odd shapes, per layer and per image; and its threading and input handling.
@Suite struct ExecutorTests {
    /// Odd everything: growth 5, 7 stem filters, 13x11 input, batch 3.
    static func oddNet(bottleneck: Bool, seed: UInt64) -> DenseNet {
        let spec = ArchitectureSpec(
            name: "odd", stem: bottleneck ? .imagenet : .cifar, growthRate: 5, blocks: [3, 2, 2],
            bottleneck: bottleneck, compression: 0.5, stemFilters: 7, paperClasses: 6)
        var rng: SeededRandom? = SeededRandom(seed)
        return Synthetic.denseNet(spec, classes: 6, random: &rng)
    }

    /// The odd net with a max-pooling transition (not pooled before its conv) and, optionally, one dense
    /// layer's conv made 5x5 (so the block buffers cannot keep a border for the 3x3 convs): the general paths.
    static func irregularNet(conv5x5: Bool) -> DenseNet {
        var net = oddNet(bottleneck: true, seed: 5)
        var rng = SeededRandom(6)
        if conv5x5 {
            let old = net.blocks[1].layers[0].conv
            let weight = Tensor(
                name: old.weight.name, shape: [old.outChannels, old.inChannels, 5, 5],
                values: rng.floats(old.outChannels * old.inChannels * 25))
            net.blocks[1].layers[0].conv = Conv2D(weight: weight, pads: [2, 2, 2, 2])
        }
        net.transitions[0].pool = Pool2D(kind: .max, kernel: 2, stride: 2)
        return net
    }

    @Test(arguments: [0, 1, 2, 3], ConvolutionMode.allCases)
    func simdMatchesReferencePerLayer(_ variant: Int, _ mode: ConvolutionMode) throws {
        let bottleneck = variant != 1
        let net =
            variant >= 2
            ? Self.irregularNet(conv5x5: variant == 3) : Self.oddNet(bottleneck: bottleneck, seed: bottleneck ? 1 : 2)
        let (height, width) = bottleneck ? (37, 29) : (13, 11)
        var rng = SeededRandom(3)
        let batch = 3
        let images = rng.floats(batch * 3 * height * width)
        var seen: [Int: [(String, [Float])]] = [:]
        let outputs = try Executor(net, threads: 2, mode: mode).run(images, batch: batch, height: height, width: width)
        { n, nchwInput in
            seen[n, default: []].append((nchwInput.name, Array(nchwInput.values)))
        }
        #expect(outputs.count == batch * 6)
        for n in 0..<batch {
            let image = Array(images[(n * 3 * height * width)..<((n + 1) * 3 * height * width)])
            let reference = ReferenceExecutor(net).run(image: image, height: height, width: width)
            let layers = try #require(seen[n])
            #expect(layers.map(\.0) == net.layerNames)
            #expect(reference.layers.map(\.name) == net.layerNames)
            for (mine, theirs) in zip(layers, reference.layers) {
                #expect(relativeError(mine.1, theirs.values) < 1e-5, "image \(n) \(mine.0) \(mode)")
            }
            #expect(relativeError(Array(outputs[(n * 6)..<((n + 1) * 6)]), reference.output) < 1e-5)
        }
    }

    /// The plan sizes its weight arena before packing: every buffer it packs fits, with nothing left over,
    /// on each path (Winograd and shifted 3x3 convs, the phase-plane 5x5, no bottleneck, folded BNs).
    @Test(arguments: [0, 1, 2, 3], ConvolutionMode.allCases)
    func packedWeightsFillTheirArenaExactly(_ variant: Int, _ mode: ConvolutionMode) throws {
        let net =
            variant >= 2
            ? Self.irregularNet(conv5x5: variant == 3) : Self.oddNet(bottleneck: variant != 1, seed: 1)
        let plan = try ExecutionPlan(net, mode: mode)
        #expect(plan.weightArena.capacity > 0)
        #expect(plan.weightArena.unusedBytes == 0)
        let winograd = plan.blocks.joined().contains { $0.conv.winograd != nil }
        #expect(winograd == (mode == .fast && variant != 1 && variant != 3))
    }

    @Test(arguments: ConvolutionMode.allCases)
    func oneThreadAndTwoThreadsGiveIdenticalResults(_ mode: ConvolutionMode) throws {
        let net = try ModelLoader.load(path: Fixtures.path("tv-tiny-legacy-opset17.onnx"))
        let images = try ModelInput(try Fixtures.npy(Fixtures.path("input-64.npy")), layout: nil, for: net)
        let one = try Executor(net, threads: 1, mode: mode).run(
            images.values, batch: images.batch, height: images.height, width: images.width)
        let two = try Executor(net, threads: 2, mode: mode).run(
            images.values, batch: images.batch, height: images.height, width: images.width)
        #expect(one == two)
    }

    /// With two threads, a batch of 3 runs two images side by side (one thread each) and the third on
    /// both threads: the same values as one image at a time on one thread.
    @Test(arguments: ConvolutionMode.allCases)
    func imagesSideBySideGiveTheSameValues(_ mode: ConvolutionMode) throws {
        let net = try ModelLoader.load(path: Fixtures.path("tv-tiny-legacy-opset17.onnx"))
        let images = try ModelInput(try Fixtures.npy(Fixtures.path("input-64.npy")), layout: nil, for: net)
        let three = images.values + images.values[0..<(images.values.count / 2)].map { $0 * 0.5 }
        let one = try Executor(net, threads: 1, mode: mode).run(
            three, batch: 3, height: images.height, width: images.width)
        let two = try Executor(net, threads: 2, mode: mode)
        #expect(try two.run(three, batch: 3, height: images.height, width: images.width) == one)
        #expect(try two.run(images.values, batch: 2, height: images.height, width: images.width) == Array(one[0..<20]))
    }

    @Test func referenceExecutorMatchesOnnxruntimeToo() throws {
        let net = try ModelLoader.load(path: Fixtures.path("tv-tiny-legacy-opset11-unfolded.onnx"))
        let images = try Fixtures.npy(Fixtures.path("input-64.npy"))
        let want = try Fixtures.npy(Fixtures.path("tv-tiny-legacy-opset11-unfolded.out.npy"))
        let per = 3 * 64 * 64
        let out = ReferenceExecutor(net).run(image: Array(images.values[0..<per]), height: 64, width: 64).output
        #expect(relativeError(out, Array(want.values[0..<10])) < 1e-5)
    }

    @Test func layoutsAreConverted() throws {
        let net = try ModelLoader.load(path: Fixtures.path("tv-tiny-legacy-opset17.onnx"))
        let nchw = try Fixtures.npy(Fixtures.path("input-64.npy"))
        // The same values in NHWC.
        var nhwc = [Float](repeating: 0, count: nchw.values.count)
        for nhwcInput in 0..<2 {
            for c in 0..<3 {
                for outputs in 0..<64 {
                    for images in 0..<64 {
                        nhwc[((nhwcInput * 64 + outputs) * 64 + images) * 3 + c] =
                            nchw.values[((nhwcInput * 3 + c) * 64 + outputs) * 64 + images]
                    }
                }
            }
        }
        let nchwInput = try ModelInput(nchw, layout: .nchw, for: net)
        let nhwcInput = try ModelInput(NPY.Array(shape: [2, 64, 64, 3], values: nhwc), layout: .nhwc, for: net)
        #expect(nchwInput.values == nhwcInput.values)
    }

    @Test func wrongInputShapesNameBothShapes() throws {
        let net = try ModelLoader.load(path: Fixtures.path("tv-tiny-dynamo-opset18.onnx"))  // fixed [2, 3, 64, 64]
        for shape in [[2, 3, 32, 32], [2, 4, 64, 64], [3, 64, 64], [2, 64, 64, 3]] {
            let array = NPY.Array(shape: shape, values: [Float](repeating: 0, count: shape.reduce(1, *)))
            let error = #expect(throws: ExecutionError.self) { try ModelInput(array, layout: .nchw, for: net) }
            guard case .inputShape(let expected, let found)? = error else {
                Issue.record("\(shape): \(String(describing: error))")
                continue
            }
            #expect(expected == "[N, 3, 64, 64] (NCHW)" && found == shape)
        }
    }

    @Test func tooSmallAnInputIsAnErrorNotATrap() throws {
        let net = Self.oddNet(bottleneck: true, seed: 4)  // ImageNet stem: /4, then two transitions /2
        #expect {
            try Executor(net).run([Float](repeating: 0, count: 3 * 6 * 6), batch: 1, height: 6, width: 6)
        } throws: {
            "\($0)" == "transition2: expected a map of at least 1x1, found 0x0 for a 6x6 input"
        }
        #expect { try Executor(net).run([Float](repeating: 0, count: 10), batch: 1, height: 64, width: 64) } throws: {
            "\($0)" == "input shape [10] does not fit the model's input [N, 3, 64, 64]"
        }
    }
}
