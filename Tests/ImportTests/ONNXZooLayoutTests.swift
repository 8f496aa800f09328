import DenseKit
import DenseKitExecute
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// The ONNX model zoo's DenseNet layout (Caffe -> Caffe2 -> ONNX, opsets 7 and 9), built by the fixture
/// script with onnx.helper from the weights of tv-tiny (torchvision's own export of them:
/// tv-tiny-legacy-opset17.onnx) and checked there by onnxruntime against torch. It reads to the same
/// canonical graph as torchvision's export, runs to onnxruntime's output in the file's [1, 10, 1, 1]
/// shape, and converts; the lies a zoo-style graph can tell are refused by node.
@Suite struct ONNXZooLayoutTests {
    static let files = ["tv-tiny-zoo-opset7.onnx", "tv-tiny-zoo-opset9.onnx"]

    @Test(arguments: files)
    func runsToOnnxruntimesOutputInTheFilesShape(_ file: String) throws {
        let net = try ModelLoader.load(path: Fixtures.path(file))
        #expect(net.source.opset == (file.contains("opset7") ? 7 : 9))
        #expect(net.input.name == "data_0" && net.input.batch == 1 && net.input.height == 64)
        #expect(net.head.summary == "global avg pool, linear 16 -> 10, logits" && net.head.outputKeepsMapAxes)
        #expect(net.inputTransform == nil)
        #expect(
            net.source.notes.contains(
                "32 Mul and Add nodes after a BatchNormalization folded into it (Caffe's Scale layer: the ONNX model "
                    + "zoo's layout)"), "\(net.source.notes)")
        let modelInput = try ModelInput(try Fixtures.npy(Fixtures.path("input-64-one.npy")), layout: nil, for: net)
        let executor = try Executor(net, threads: 2)
        let results = try executor.run(modelInput.values, batch: 1, height: 64, width: 64)
        #expect(try executor.outputShape(height: 64, width: 64) == [10, 1, 1])
        let reference = try Fixtures.npy(Fixtures.path(file.replacingOccurrences(of: ".onnx", with: ".out.npy")))
        #expect(reference.shape == [1, 10, 1, 1])
        #expect(relativeError(results, reference.values) <= 1e-4, "\(relativeError(results, reference.values))")
        let plain = ReferenceExecutor(net).run(image: modelInput.values, height: 64, width: 64)
        #expect(relativeError(results, plain.output) <= 1e-5)
        // `run` writes the file's 4-D shape.
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("out.npy").path
        let run = try densekit([
            "run", Fixtures.path(file), "--input", Fixtures.path("input-64-one.npy"), "--output", out,
        ])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try NPY.read(path: out).shape == [1, 10, 1, 1])
    }

    /// Caffe's Scale folded into each BatchNorm gives torchvision's BatchNorm back, and the same outputs
    /// at every layer as torchvision's own export of the weights.
    @Test(arguments: files)
    func isTheGraphOfTorchvisionsExportOfTheSameWeights(_ file: String) throws {
        let zoo = try ModelLoader.load(path: Fixtures.path(file))
        let torchvision = try ModelLoader.load(path: Fixtures.path("tv-tiny-legacy-opset17.onnx"))
        #expect(zoo.layerNames == torchvision.layerNames)
        let zooNorms = zoo.blocks.flatMap(\.layers).map(\.norm) + [zoo.head.norm]
        let tvNorms = torchvision.blocks.flatMap(\.layers).map(\.norm) + [torchvision.head.norm]
        #expect(zooNorms.map(\.gamma.values) == tvNorms.map(\.gamma.values))
        #expect(zooNorms.map(\.beta.values) == tvNorms.map(\.beta.values))
        let input = try Fixtures.npy(Fixtures.path("input-64-one.npy"))
        let report = try ModelDiff(zoo, torchvision).run(input.values, batch: 1, height: 64, width: 64)
        #expect(report.withinTolerance && report.layers.map(\.name) == zoo.layerNames)
        let diff = try densekit([
            "diff", Fixtures.path(file), Fixtures.path("tv-tiny-legacy-opset17.onnx"), "--input",
            Fixtures.path("input-64-one.npy"),
        ])
        #expect(diff.status == 0, "\(diff.stdout)\(diff.stderr)")
    }

    /// Each lie is made from the valid opset-7 file: one node or attribute changed.
    @Test func aZooGraphThatLiesIsRefusedNamingTheNode() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        func refusal(_ name: String, _ edit: (ONNXEditing.Model) throws -> Void) throws -> String {
            let path = folder.appendingPathComponent(name).path
            try ONNXEditing.mutated("tv-tiny-zoo-opset7.onnx", edit).write(to: URL(fileURLWithPath: path))
            let outcome = try densekit(["inspect", path])
            #expect(outcome.status == 2, "\(name): \(outcome.stdout)")
            return outcome.stderr.replacingOccurrences(of: "error: \(path): ", with: "")
        }
        func initializerIndex(_ model: ONNXEditing.Model, _ name: String) throws -> Int {
            try #require(
                (0..<Int(ONNXEditing.graph(model).pointee.n_initializer)).first {
                    ONNXEditing.name(ONNXEditing.initializer(model, $0).pointee.name) == name
                })
        }
        // A Scale whose 16 values are laid along the width, not the channels.
        #expect(
            try refusal("along-width.onnx") { model in
                ONNXEditing.setDims(
                    ONNXEditing.initializer(model, try initializerIndex(model, "conv2_1/x1/scale_w")), [1, 1, 8])
            } == "Mul node 'conv2_1/x1/scale': expected one value per channel of BatchNormalization node "
                + "'conv2_1/x1/bn' (8), found shape [1, 1, 8]\n")
        // A global pool that covers only part of the final 4x4 map.
        #expect(
            try refusal("partial-pool.onnx") { model in
                let pool = ONNXEditing.node(model, try ONNXEditing.firstNode(model, "AveragePool", skipping: 2))
                ONNXEditing.setInts(try ONNXEditing.attribute(pool, "kernel_shape"), [3, 3])
            } == "AveragePool node 'pool5': expected an AveragePool over the whole 4x4 final map (the global pool), "
                + "found kernel 3x3, pads [0, 0, 0, 0]\n")
        // BatchNormalization per position (opset 7's spatial 0).
        let spatial = try refusal("spatial.onnx") { model in
            let norm = ONNXEditing.node(model, try ONNXEditing.firstNode(model, "BatchNormalization"))
            try ONNXEditing.attribute(norm, "spatial").pointee.i = 0
        }
        #expect(spatial == "BatchNormalization node 'conv1/bn': spatial 0 (a BatchNormalization per position)\n")
    }

    @Test(.enabled(if: Fixtures.full != nil, "full-size fixtures not built (make fixtures-full)"))
    func fullSizeZooLayoutDiffsCleanAgainstTorchvisionsExport() throws {
        let folder = try #require(Fixtures.full)
        let diff = try densekit([
            "diff", folder + "/densenet121-zoo-opset9.onnx", folder + "/densenet121-legacy-opset17.onnx", "--input",
            folder + "/input-224.npy", "--json",
        ])
        #expect(diff.status == 0, "\(diff.stderr)")
        let verify = try densekit(["verify", folder + "/densenet121-zoo-opset9.onnx", "--json"]).json()
        #expect(verify["architecture"] as? String == "densenet121", "\(verify)")
    }
}
