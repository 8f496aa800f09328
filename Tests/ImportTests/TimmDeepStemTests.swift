import DenseKit
import DenseKitExecute
import DenseKitFormats
import DenseKitGraph
import DenseKitKernels
import Foundation
import ONNXProto
import TestSupport
import Testing

/// timm's deep stem (`stem_type='deep'`: three 3x3 convs with BN-ReLU) and its anti-aliased stem pool
/// (`BlurPool2d` after a stride-1 max pool), as timm writes them: a state_dict, a whole module, a traced
/// TorchScript archive and torch's dynamo ONNX export (fixtures: timm 1.0.31). Their outputs against timm's
/// are in `FixtureAccuracyTests`; here, what each file is read as, what the verifier says of it, and the
/// lying files.
@Suite struct TimmDeepStemTests {
    /// The stem of the blurred tiny net (growth 4): 3->4 stride 2, 4->4, 4->8, max pool 3x3/1, blur 3x3/2.
    static func expectBlurredStem(_ net: DenseNet) {
        let stem = net.stem
        #expect(stem.convolutions.map(\.conv.outChannels) == [4, 4, 8])
        #expect(stem.convolutions.map(\.conv.stride) == [2, 1, 1])
        #expect(stem.convolutions.allSatisfy { $0.conv.kernel == 3 && $0.conv.pads == [1, 1, 1, 1] })
        #expect(stem.pool == Pool2D(kind: .max, kernel: 3, stride: 1, pads: [1, 1, 1, 1]))
        #expect(stem.blur == BlurPool2D(kernel: 3, stride: 2))
    }

    @Test(arguments: ["timm-tiny-blur-module.pth", "timm-tiny-blur-traced.pt", "timm-tiny-blur-dynamo.onnx"])
    func theBlurredStemIsReadFromEveryFileThatNamesIt(_ file: String) throws {
        let net = try ModelLoader.load(path: Fixtures.path(file))
        Self.expectBlurredStem(net)
        #expect(net.blocks.map(\.layers.count) == [2, 2, 2] && net.classes == 5)
        if !file.hasSuffix(".onnx") {
            #expect(
                net.source.notes.contains(
                    "timm's deep stem ('features.conv0' to 'conv2', 3x3 convs with BN-ReLU) with its blur pool "
                        + "(BlurPool2d), as the file says"))
        }
    }

    /// A state_dict has no BlurPool2d: the deep stem alone, unless the architecture is densenetblur121d's,
    /// and the note says so. (The blurred net's state_dict, read so, is the deep net without the blur.)
    @Test func aStateDictAssumesABlurOnlyForDensenetblur121dsArchitecture() throws {
        let net = try ModelLoader.load(path: Fixtures.path("timm-tiny-blur.pth"))
        #expect(net.stem.deep.count == 2 && net.stem.blur == nil)
        #expect(net.stem.pool == Pool2D(kind: .max, kernel: 3, stride: 2, pads: [1, 1, 1, 1]))
        #expect(
            net.source.notes.contains(
                "timm's deep stem ('features.conv0' to 'conv2', 3x3 convs with BN-ReLU); no blur pool assumed "
                    + "(a state_dict does not store one; only timm's densenetblur121d has it)"))
        let deep = try ModelLoader.load(path: Fixtures.path("timm-tiny-deep.pth"))
        #expect(deep.stem.deep.count == 2 && deep.stem.blur == nil)
    }

    /// The verifier names the deep stem and the blur pool (one finding each), and a deep stem is an ImageNet
    /// stem: the closest architecture is chosen among the ImageNet ones.
    @Test func theVerifierNamesTheDeepStemAndTheBlurPool() throws {
        let report = try Verifier().verify(try ModelLoader.load(path: Fixtures.path("timm-tiny-blur-module.pth")))
        #expect(report.spec.name == "densenet121")
        let stem = report.deviations.filter { $0.layer == "stem" }
        #expect(stem.map(\.check) == ["convs", "filters", "max pool"])
        #expect(stem.first?.expected == "one 7x7 stride 2")
        #expect(
            stem.first?.found
                == "deep stem: 3x3 stride 2 (4 filters), 3x3 stride 1 (4 filters), 3x3 stride 1 (8 filters)")
        #expect(
            stem.last?.found == "max 3x3 stride 1 pad 1, then blur pool 3x3 stride 2 reflect pad 1"
                && stem.last?.expected == "max 3x3 stride 2 pad 1")
    }

    /// timm's densenetblur121d as timm ships it (safetensors, no filter stored): read with its blur pool by
    /// its architecture, verified against densenet121 with exactly the two stem findings and timm's counts.
    @Test(.enabled(if: Fixtures.full != nil, "full-size fixtures not built (make fixtures-full)"))
    func densenetblur121dVerifiesWithItsTwoStemDeviations() throws {
        let folder = try #require(Fixtures.full)
        let net = try ModelLoader.load(path: folder + "/timm-densenetblur121d.safetensors")
        #expect(net.stem.convolutions.map(\.conv.outChannels) == [32, 32, 64] && net.stem.blur != nil)
        #expect(net.source.notes.contains { $0.contains("as in timm's densenetblur121d, whose architecture this is") })
        let report = try Verifier().verify(net, against: "densenet121")
        #expect(report.deviations.map(\.check) == ["convs", "max pool"], "\(report.deviations)")
        let meta = try Fixtures.meta(folder + "/timm-densenetblur121d.meta.json")
        #expect(report.parameters.trainable == meta.trainable && meta.trainable == 7_998_088)
        #expect(report.parameters.withBatchNormStatistics == meta.withBatchNormStatistics)
        #expect(report.finalMapSize == FeatureMapSizes.Size(7, 7))
    }

    // MARK: lying files

    /// `densekit inspect` on DenseKit's ONNX of the blurred net with one thing changed in its blur pool: exit 2
    /// and one line, which is returned without the "error: <file>: " it starts with.
    static func refusalOfLyingONNX(_ edit: (ONNXEditing.Model) throws -> Void) throws -> String {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let written = folder.appendingPathComponent("blur.onnx").path
        let converted = try densekit([
            "convert", Fixtures.path("timm-tiny-blur-module.pth"), "-o", written, "--accept-deviations",
        ])
        #expect(converted.status == 0, "\(converted.stderr)")
        let path = try Fixtures.write(try ONNXEditing.mutated(written, edit), as: "lying.onnx", in: folder)
        let outcome = try densekit(["inspect", path])
        #expect(outcome.status == 2 && outcome.stderr.hasPrefix("error: \(path): "), "\(outcome.stderr)")
        return String(outcome.stderr.dropFirst("error: \(path): ".count))
    }

    @Test func aBlurFilterThatIsNotBinomialIsRefusedNamingItsWeight() throws {
        let refusal = try Self.refusalOfLyingONNX { model in
            let weight = try ONNXEditing.initializer(model, named: "stem.blur.weight").pointee.raw_data
            weight.data.withMemoryRebound(to: Float.self, capacity: 1) { $0[4] = 0.3 }  // the centre tap, 0.25
        }
        #expect(
            refusal
                == "Conv node 'stem.blur': weight 'stem.blur.weight': expected the binomial blur filter (0.25, 0.5, "
                + "0.25 squared) in every channel, no bias, found other values\n")
    }

    @Test func aBlurPadOtherThanItsSideGivesIsRefusedNamingTheNode() throws {
        let refusal = try Self.refusalOfLyingONNX { model in
            let pads = try ONNXEditing.initializer(model, named: "stem.blur.pads")
            pads.pointee.int64_data[2] = 2
            pads.pointee.int64_data[6] = 2
        }
        #expect(
            refusal
                == "Conv node 'stem.blur': expected reflection pads 1 on each side before it, none of its own (a blur "
                + "pool), found reflection pads [2, 1, 2, 1], conv pads [0, 0, 0, 0]\n")
    }

    @Test func aReflectionPadBeforeAnythingButABlurFilterIsRefused() throws {
        let refusal = try Self.refusalOfLyingONNX { model in
            let conv = ONNXEditing.node(model, try ONNXEditing.firstNode(model, "Pad") + 1)
            #expect(ONNXEditing.name(conv.pointee.name) == "stem.blur")
            ONNXEditing.setString(&conv.pointee.op_type, "MaxPool")
        }
        #expect(
            refusal == "MaxPool node 'stem.blur': consumes a reflection Pad; only a blur pool's depthwise Conv may\n")
    }

    /// The blur a DenseKit-written safetensors file records is true or false, nothing else; `inspect --json`
    /// reports the stem's convs and blur pool.
    @Test func theRecordedBlurIsABooleanAndInspectReportsIt() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let written = folder.appendingPathComponent("blur.safetensors").path
        let converted = try densekit([
            "convert", Fixtures.path("timm-tiny-blur-module.pth"), "-o", written, "--accept-deviations",
        ])
        #expect(converted.status == 0, "\(converted.stderr)")
        let inspected = try densekit(["inspect", written, "--json"])
        let stem = try #require(try inspected.json()["stem"] as? [String: Any])
        #expect(stem["convs"] as? Int == 3 && stem["blurPool"] as? Bool == true && stem["kernel"] as? Int == 3)
        let lying = try SafetensorsEditing.withHeader(try Data(contentsOf: URL(fileURLWithPath: written))) { header in
            var metadata = header["__metadata__"] as? [String: String] ?? [:]
            #expect(metadata["densekit.stem_blur_pool"] == "true")
            metadata["densekit.stem_blur_pool"] = "maybe"
            header["__metadata__"] = metadata
        }
        let path = try Fixtures.write(lying, as: "lying.safetensors", in: folder)
        let outcome = try densekit(["inspect", path])
        #expect(outcome.status == 2)
        #expect(
            outcome.stderr
                == "error: \(path): __metadata__ 'densekit.stem_blur_pool': expected true or false, found 'maybe'\n")
    }

    /// A TorchScript archive keeps the blur's filter (`features.pool0.1.filt`): it must be the binomial one.
    @Test func aTorchScriptBlurFilterWithOtherValuesIsRefused() throws {
        // The filter's storage is the only one of 8 x 1 x 3 x 3 float32 values (288 bytes).
        var changed = 0
        let bytes = try WholeModuleTests.rezipped(Fixtures.path("timm-tiny-blur-traced.pt")) { name, data in
            guard name.contains("/data/"), data.count == 288 else { return data }
            changed += 1
            var edited = data
            edited.withUnsafeMutableBytes { $0.storeBytes(of: Float(0.5), toByteOffset: 16, as: Float.self) }
            return edited
        }
        #expect(changed == 1)
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = try Fixtures.write(bytes, as: "lying.pt", in: folder)
        let outcome = try densekit(["inspect", path])
        #expect(outcome.status == 2)
        #expect(
            outcome.stderr
                == "error: \(path): tensor 'features.pool0.1.filt': expected the blur pool's filter "
                + "[1,2,1]x[1,2,1]/16 per channel, found shape [8, 1, 3, 3] with other values\n")
    }
}

/// The blur kernel against values worked out by hand, and against the plain reference on odd sizes.
@Suite struct BlurPoolKernelTests {
    /// x[r][c] = 4r + c on 4x4, reflection pad 1, [1,2,1]x[1,2,1]/16 at stride 2. The filter is separable and
    /// x linear, so each output is the vertical filter of 4r plus the horizontal one of c: at (0, 0) rows and
    /// columns 1, 0, 1 give 2 + 0.5; at (0, 1) columns 1, 2, 3 give 2; at (1, 0) rows 1, 2, 3 give 8.
    @Test func aRampIsBlurredToTheValuesWorkedOutByHand() {
        let input = (0..<16).map { Float($0 / 4 * 4 + $0 % 4) }
        let blur = BlurPool2D(kernel: 3, stride: 2)
        let expected: [Float] = [2.5, 4, 8.5, 10]
        var output = [Float](repeating: .nan, count: 4)
        input.withUnsafeBufferPointer { src in
            output.withUnsafeMutableBufferPointer { dst in
                Elementwise.blurPool(
                    src.baseAddress!, dst.baseAddress!, channels: 1, height: 4, width: 4,
                    coefficients: blur.coefficients, stride: 2, padding: blur.padding, outHeight: 2, outWidth: 2,
                    to: Elementwise.Strides(row: 2, plane: 4))
            }
        }
        #expect(output == expected)
        let reference = Reference.blurPool(
            input, channels: 1, height: 4, width: 4, coefficients: blur.coefficients, stride: 2, padding: 1)
        #expect(reference.values == expected && reference.height == 2 && reference.width == 2)
    }

    @Test(arguments: [(3, 2, 7, 5), (3, 2, 40, 21), (5, 2, 9, 33), (3, 1, 6, 17)])
    func theSIMDKernelMatchesTheReference(_ size: (kernel: Int, stride: Int, height: Int, width: Int)) {
        var random = SeededRandom(7)
        let channels = 3
        let input = random.floats(channels * size.height * size.width)
        let blur = BlurPool2D(kernel: size.kernel, stride: size.stride)
        let reference = Reference.blurPool(
            input, channels: channels, height: size.height, width: size.width, coefficients: blur.coefficients,
            stride: blur.stride, padding: blur.padding)
        let (oh, ow) = blur.outputSize(size.height, size.width)
        #expect(oh == reference.height && ow == reference.width)
        var output = [Float](repeating: .nan, count: channels * oh * ow)
        input.withUnsafeBufferPointer { src in
            output.withUnsafeMutableBufferPointer { dst in
                Elementwise.blurPool(
                    src.baseAddress!, dst.baseAddress!, channels: channels, height: size.height, width: size.width,
                    coefficients: blur.coefficients, stride: blur.stride, padding: blur.padding, outHeight: oh,
                    outWidth: ow, to: Elementwise.Strides(row: ow, plane: oh * ow))
            }
        }
        #expect(relativeError(output, reference.values) <= 1e-6)
    }

    @Test func theCoefficientsAreBinomial() {
        #expect(BlurPool2D(kernel: 3).coefficients == [0.25, 0.5, 0.25])
        #expect(BlurPool2D(kernel: 5).coefficients == [1, 4, 6, 4, 1].map { Float($0) / 16 })
        #expect(BlurPool2D(kernel: 3, stride: 2).padding == 1 && BlurPool2D(kernel: 5, stride: 2).padding == 2)
    }
}
