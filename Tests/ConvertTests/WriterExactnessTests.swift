import DenseKit
import DenseKitExecute
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// Each writer's rewrites (a folded BatchNorm restored, the epsilon compensated in the variance,
/// BatchNorms folded for ONNX) are exact: the file read back runs bit for bit like the graph written.
@Suite struct WriterExactnessTests {
    static let spec = ArchitectureSpec(
        name: "test", stem: .imagenet, growthRate: 4, blocks: [2, 3], bottleneck: true,
        compression: 0.5, stemFilters: 8, paperClasses: 10)

    /// A random DenseNet whose stem BN was folded into the conv (as torch's exporter does), with
    /// variances at the edges: 0 and 1e-9, which Keras's larger epsilon turns negative.
    static func net() -> DenseNet {
        var rng: SeededRandom? = SeededRandom(17)
        var net = Synthetic.denseNet(spec, classes: 10, inputSize: 32, random: &rng)
        net.stem.conv = net.stem.conv.folding(net.stem.norm!)
        net.stem.norm = nil
        var variance = net.blocks[0].layers[0].norm.variance.values
        variance[0] = 0
        variance[1] = 1e-9
        net.blocks[0].layers[0].norm.variance.values = variance
        return net
    }

    static func run(_ net: DenseNet) throws -> [Float] {
        var rng = SeededRandom(3)
        return try Executor(net).run(rng.floats(2 * 3 * 32 * 32), batch: 2, height: 32, width: 32)
    }

    @Test(arguments: [
        ("m.dnk", ConversionTarget.dnk), ("m.onnx", .onnx), ("m.safetensors", .safetensors), ("m.h5", .kerasH5),
        ("m.weights.h5", .kerasWeightsH5),
    ])
    func writtenFilesRunBitForBit(_ name: String, _ target: ConversionTarget) throws {
        let net = Self.net()
        for fold in target == .onnx ? [false, true] : [false] {
            var options = ConversionTarget.Options()
            options.foldBatchNorm = fold
            let writer = target.writer(options)
            let (prepared, _) = try writer.prepare(net, dtype: .f32)
            let provenance = Provenance(
                sourceFile: "synthetic", sourceSHA256: "", sourceFormat: "none", producer: "test")
            let back = try Fixtures.loadWritten(
                try writer.encode(prepared, dtype: .f32, provenance: provenance), as: name)
            let (original, readBack) = (try Self.run(net), try Self.run(back))
            #expect(
                original.elementsEqual(readBack) { $0.bitPattern == $1.bitPattern },
                "\(name) fold \(fold): max difference \(zip(original, readBack).map { abs($0 - $1) }.max() ?? 0)")
        }
    }

    /// tf.keras splits `layer_names` past HDF5's 64 KiB attribute header limit into `layer_names0`,
    /// `layer_names1`, ...; a DenseNet with a block of 480 layers needs it (3,300 names).
    @Test func aLongLayerListIsSplitAsKerasSplitsIt() throws {
        var rng: SeededRandom? = SeededRandom(5)
        let long = ArchitectureSpec(
            name: "long", stem: .imagenet, growthRate: 1, blocks: [480], bottleneck: true,
            compression: 0.5, stemFilters: 4, paperClasses: 2)
        let net = Synthetic.denseNet(long, classes: 2, inputSize: 32, random: &rng)
        let writer = KerasModelWriter(layout: .keras2Weights)
        let bytes = try writer.encode(
            try writer.prepare(net, dtype: .f32).net, dtype: .f32,
            provenance: Provenance(sourceFile: "", sourceSHA256: "", sourceFormat: "", producer: ""))
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = try Fixtures.write(bytes, as: "long.h5", in: folder)
        let names = ["layer_names", "layer_names0", "layer_names1"]
        #expect(try HDF5Editing.rootAttributes(names, in: path) == ["layer_names0", "layer_names1"])
        let back = try ModelLoader.load(path: path)
        #expect(back.blocks.map(\.layers.count) == [480])
        #expect(try Self.run(back) == Self.run(net))
    }
}
