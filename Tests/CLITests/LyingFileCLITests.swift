import DenseKit
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// Files that parse but lie: each is a real fixture edited by the tools of its format (protobuf-c,
/// libhdf5, or DenseKit's own `.dnk` writer fed a graph changed in code), so that one value
/// contradicts the rest. One case per rule of `DenseNet.validate()` and of the importers' checks
/// behind it; each must be refused by `inspect`, `verify`, `run`, `diff` (on either side) and
/// `convert` with exit 2 and exactly the line `error: <file>: <layer or tensor>: expected ..., found ...`,
/// and nothing may be written.
@Suite struct LyingFileCLITests {
    struct Lie {
        var file: String
        /// What follows `error: <file>: `.
        var message: String
        /// An input array the model would take, and a sound model of the same kind to diff against.
        var input: String
        var reference: String
    }

    let nchw = Fixtures.path("input-64.npy"), nhwc = Fixtures.path("input-64-nhwc.npy")
    let torchTiny = Fixtures.path("tv-tiny-legacy-opset17.onnx"), kerasTiny = Fixtures.path("keras3-tiny.h5")

    @Test func everyCommandRefusesEveryLie() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let lies = try onnxLies(folder) + kerasLies(folder) + dnkLies(folder) + safetensorsLies(folder)
        let before = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        let out = folder.appendingPathComponent("out").path
        for lie in lies {
            let commands: [[String]] = [
                ["inspect", lie.file], ["verify", lie.file], ["inspect", lie.file, "--json"],
                ["run", lie.file, "--input", lie.input, "--output", out + ".npy"],
                ["diff", lie.file, lie.reference, "--input", lie.input],
                ["diff", lie.reference, lie.file, "--input", lie.input, "--report", out + ".html"],
                ["convert", lie.file, "-o", out + ".dnk", "--accept-deviations"],
            ]
            for args in commands {
                let outcome = try densekit(args)
                #expect(outcome.status == 2, "\(args): \(outcome.stderr)")
                #expect(outcome.stdout.isEmpty, "\(args): \(outcome.stdout)")
                #expect(outcome.stderr == "error: \(lie.file): \(lie.message)\n", "\(args)")
            }
        }
        // Nothing was written: the folder holds exactly the lying files (and the data beside them).
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == before)
    }

    // MARK: ONNX, edited through protobuf-c

    func onnxLies(_ folder: URL) throws -> [Lie] {
        typealias E = ONNXEditing
        var lies: [Lie] = []
        func lie(
            _ name: String, _ message: String, fixture: String = "tv-tiny-legacy-opset17.onnx",
            extra: [String: Data] = [:],
            _ edit: (E.Model) throws -> Void
        ) throws {
            let path = folder.appendingPathComponent(name).path
            try E.mutated(fixture, edit).write(to: URL(fileURLWithPath: path))
            for (n, d) in extra { try d.write(to: folder.appendingPathComponent(n)) }
            lies.append(Lie(file: path, message: message, input: nchw, reference: torchTiny))
        }
        try lie("huge-input.onnx", "input 'input': expected height from 1 to 16384, found 3000000000") {
            try E.setInputDims($0, [1, 3, 3_000_000_000, 3_000_000_000])
        }
        try lie("negative-input.onnx", "input 'input': expected height from 1 to 16384, found -5") {
            try E.setInputDims($0, [1, 3, -5, 64])
        }
        try lie("negative-epsilon.onnx", "block1.layer1.norm: expected a finite epsilon > 0, found -1.0") { m in
            let bn = E.node(m, try E.firstNode(m, "BatchNormalization"))
            try E.attribute(bn, "epsilon").pointee.f = -1
        }
        try lie(
            "pads-past-kernel.onnx",
            "block1.layer1.conv: expected 4 pads from 0 to 2 (below the kernel 3), found [5, 5, 5, 5]"
        ) { m in
            // Convs in order: the stem, block1.layer1's bottleneck, then its 3x3.
            try E.setInts(E.attribute(E.node(m, try E.firstNode(m, "Conv", skipping: 2)), "pads"), [5, 5, 5, 5])
        }
        try lie("huge-stride.onnx", "stem.conv: expected stride 1 to 16, found 40") { m in
            try E.setInts(E.attribute(E.node(m, try E.firstNode(m, "Conv")), "strides"), [40, 40])
        }
        try lie(
            "negative-pads.onnx",
            "Conv node '/features/conv0/Conv': expected 4 pads from 0 to 63, found [-1, -1, -1, -1]"
        ) { m in
            try E.setInts(E.attribute(E.node(m, try E.firstNode(m, "Conv")), "pads"), [-1, -1, -1, -1])
        }
        try lie(
            "zero-stride.onnx",
            "Conv node '/features/conv0/Conv': expected strides equal on both axes, from 1 to 63, found [0, 0]"
        ) { m in
            try E.setInts(E.attribute(E.node(m, try E.firstNode(m, "Conv")), "strides"), [0, 0])
        }
        try lie(
            "kernel-shape.onnx",
            """
            Conv node '/features/conv0/Conv': expected kernel_shape [7, 7] (the weight's shape [8, 3, 7, 7]), \
            found kernel_shape [3, 3]
            """
        ) { m in
            try E.setInts(E.attribute(E.node(m, try E.firstNode(m, "Conv")), "kernel_shape"), [3, 3])
        }
        try lie("grouped.onnx", "Conv node '/features/conv0/Conv': expected group 1, found group 2") { m in
            try E.attribute(E.node(m, try E.firstNode(m, "Conv")), "group").pointee.i = 2
        }
        // The stem conv of the folded export has a bias (the stem BN folded in): one value short.
        try lie(
            "short-bias.onnx",
            """
            Conv node '/features/conv0/Conv': bias 'onnx::Conv_162': expected 8 values (one per output channel), \
            found 7
            """
        ) { m in
            let conv = E.node(m, try E.firstNode(m, "Conv"))
            let biasName = E.name(conv.pointee.input[2])
            let graphProto = E.graph(m).pointee
            let tensorProto = try #require(
                (0..<graphProto.n_initializer).map { E.initializer(m, $0) }.first {
                    E.name($0.pointee.name) == biasName
                })
            E.setDims(tensorProto, [7])
            tensorProto.pointee.raw_data.len -= 4
        }
        let data = "tv-tiny-dynamo-opset18.onnx.data"
        try lie(
            "far-offset.onnx",
            """
            tensor 'features.conv0.weight': expected external data 'tv-tiny-dynamo-opset18.onnx.data' to hold \
            bytes 9223372036854775807 to beyond 2^63, found a file of 24032 bytes
            """,
            fixture: "tv-tiny-dynamo-opset18.onnx", extra: [data: try Fixtures.data(data)]
        ) { m in
            let tensorProto = E.initializer(m, try E.firstWeight(m, rank: 4))
            let entry = try #require(
                (0..<tensorProto.pointee.n_external_data).map { tensorProto.pointee.external_data[$0]! }.first {
                    E.name($0.pointee.key) == "offset"
                })
            E.setString(&entry.pointee.value, "9223372036854775807")
        }
        return lies
    }

    // MARK: Keras, edited through libhdf5

    func kerasLies(_ folder: URL) throws -> [Lie] {
        var lies: [Lie] = []
        func lie(_ name: String, _ message: String, _ edit: (HDF5Editing.Handle) throws -> Void) throws {
            let path = folder.appendingPathComponent(name).path
            try HDF5Editing.editedCopy("keras3-tiny.h5", to: path, edit)
            lies.append(Lie(file: path, message: message, input: nhwc, reference: kerasTiny))
        }
        func config(_ layer: String, _ key: String, _ value: Any) -> (HDF5Editing.Handle) throws -> Void {
            { try HDF5Editing.editConfig($0) { name, c in if name == layer { c[key] = value } } }
        }
        try lie(
            "zero-stride.h5", "stem.conv: expected stride 1 to 16, found 0", config("conv1_conv", "strides", [0, 0]))
        try lie(
            "uneven-stride.h5", "layer 'conv1_conv': expected strides equal on both axes, found [2, 1]",
            config("conv1_conv", "strides", [2, 1]))
        try lie("zero-pool.h5", "stem.pool: expected pool size 1 to 31, found 0", config("pool1", "pool_size", [0, 0]))
        try lie(
            "kernel-size.h5",
            """
            layer 'conv1_conv': expected kernel_size [7, 7] (the stored kernel's shape [7, 7, 3, 8]), found \
            kernel_size [3, 3] in the config
            """,
            config("conv1_conv", "kernel_size", [3, 3]))
        try lie(
            "dilated.h5", "layer 'conv2_block1_2_conv': expected dilation_rate [1, 1], found [2, 2]",
            config("conv2_block1_2_conv", "dilation_rate", [2, 2]))
        try lie(
            "grouped.h5", "layer 'conv2_block1_2_conv': expected groups 1, found 2",
            config("conv2_block1_2_conv", "groups", 2))
        try lie(
            "negative-epsilon.h5", "stem.norm: expected a finite epsilon > 0, found -1.0",
            config("conv1_bn", "epsilon", -1.0))
        try lie("short-bias.h5", "stem.conv: bias 'conv1_conv/bias': expected 8 values (one per channel), found 5") {
            f in
            try HDF5Editing.replace(f, "model_weights/conv1_conv/conv1_conv/bias", dims: [5])
            try HDF5Editing.setStrings(
                f, "model_weights/conv1_conv", "weight_names", ["conv1_conv/kernel", "conv1_conv/bias"])
        }
        try lie(
            "short-variance.h5",
            "layer 'conv1_bn': weight 'conv1_bn/moving_variance': expected 8 values (one per channel), found 7"
        ) { f in
            try HDF5Editing.replace(f, "model_weights/conv1_bn/conv1_bn/moving_variance", dims: [7], fill: 1)
        }
        try lie(
            "wide-bottleneck.h5",
            "layer 'conv2_block1_1_conv': kernel 'conv2_block1_1_conv/kernel': expected 8 input channels, found 9"
        ) { f in
            try HDF5Editing.replace(
                f, "model_weights/conv2_block1_1_conv/conv2_block1_1_conv/kernel", dims: [1, 1, 9, 16])
        }
        try lie(
            "narrow-classifier.h5",
            "layer 'predictions': kernel 'predictions/kernel': expected 16 in-features (the final channels), found 15"
        ) { f in
            try HDF5Editing.replace(f, "model_weights/predictions/predictions/kernel", dims: [15, 10])
        }
        return lies
    }

    // MARK: safetensors, rewritten as a consistent file with one tensor changed

    func safetensorsLies(_ folder: URL) throws -> [Lie] {
        typealias S = SafetensorsEditing
        func lie(_ name: String, _ message: String, _ edit: (inout [String: S.Entry]) -> Void) throws -> Lie {
            let path = folder.appendingPathComponent(name).path
            try S.rewritten("tv-tiny.safetensors", edit).write(to: URL(fileURLWithPath: path))
            return Lie(file: path, message: message, input: nchw, reference: torchTiny)
        }
        let variance = "features.norm0.running_var"
        let bottleneck = "features.denseblock1.denselayer2.conv1.weight"
        // The same lie in a .pth of each torch.save format, written by the tests' own torch.save writer.
        var entries = try S.entries(try Fixtures.data("tv-tiny.safetensors")).entries
        entries[variance]?.shape = [7]
        entries[variance]?.bytes.removeLast(4)
        let pth = try [TorchSaveWriting.Format.zip, .legacy].map { format -> Lie in
            let path = folder.appendingPathComponent("short-variance-\(format).pth").path
            try TorchSaveWriting.file(entries, format: format).write(to: URL(fileURLWithPath: path))
            return Lie(
                file: path, message: "stem.norm: variance '\(variance)': expected 8 values (one per channel), found 7",
                input: nchw, reference: torchTiny)
        }
        return pth + [
            try lie(
                "short-variance.safetensors",
                "stem.norm: variance '\(variance)': expected 8 values (one per channel), found 7"
            ) {
                $0[variance]?.shape = [7]
                $0[variance]?.bytes.removeLast(4)
            },
            // block1.layer2 reads 8 + 4 = 12 channels; its bottleneck conv claims 11.
            try lie(
                "narrow-bottleneck.safetensors",
                "block1.layer2.bottleneck.conv: weight '\(bottleneck)': expected 12 input channels, found 11"
            ) {
                $0[bottleneck]?.shape = [16, 11, 1, 1]
                $0[bottleneck]?.bytes.removeLast(16 * 4)
            },
        ]
    }

    // MARK: .dnk, written by DenseKit's own writer from a graph changed in code (valid checksums)

    func dnkLies(_ folder: URL) throws -> [Lie] {
        let good = try ModelLoader.load(path: torchTiny)
        var lies: [Lie] = []
        func lie(_ name: String, _ message: String, _ edit: (inout DenseNet) -> Void) throws {
            var net = good
            edit(&net)
            let provenance = Provenance(sourceFile: "lie", sourceSHA256: "", sourceFormat: "onnx", producer: "test")
            let path = folder.appendingPathComponent(name).path
            try DNKModelWriter().encode(net, dtype: .f32, provenance: provenance).write(to: URL(fileURLWithPath: path))
            lies.append(Lie(file: path, message: message, input: nchw, reference: torchTiny))
        }
        try lie("zero-epsilon.dnk", "block1.layer1.norm: expected a finite epsilon > 0, found 0.0") {
            $0.blocks[0].layers[0].norm.epsilon = 0
        }
        try lie("pads.dnk", "block2.layer1.conv: expected 4 pads from 0 to 2 (below the kernel 3), found [3, 3, 3, 3]")
        {
            $0.blocks[1].layers[0].conv.pads = [3, 3, 3, 3]
        }
        try lie("stride.dnk", "transition1.conv: expected stride 1 to 16, found 20") {
            $0.transitions[0].conv.stride = 20
        }
        try lie(
            "shrinking-layer.dnk",
            """
            block3.layer2.conv: expected stride 1 and pads summing to 2 per axis (a size-preserving conv, for the \
            concatenation), found stride 2, pads [1, 1, 1, 1]
            """
        ) {
            $0.blocks[2].layers[1].conv.stride = 2
        }
        try lie("huge-input.dnk", "input 'input': expected height from 1 to 16384, found 20000") {
            $0.input.height = 20_000
        }
        try lie("tiny-input.dnk", "transition2: expected a map of at least 1x1, found 0x0 for a 8x8 input") {
            $0.input.height = 8
            $0.input.width = 8
        }
        return lies
    }
}
