import DenseKit
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// ONNX files as onnxruntime's extended optimisation level saves them: its `com.microsoft` FusedConv (a
/// Conv with its Relu as an attribute) reads as the Conv and the Relu; other contrib operators, and a
/// FusedConv with another activation, are exit 2 naming the node, the operator and its domain.
@Suite struct ORTOptimisedTests {
    @Test func fusedConvReadsAsConvAndRelu() throws {
        let net = try ModelLoader.load(path: Fixtures.path("tv-tiny-ort-extended.onnx"))
        let plain = try ModelLoader.load(path: Fixtures.path("tv-tiny-legacy-opset17.onnx"))
        #expect(net.layerNames == plain.layerNames)
        #expect(net.stem.relu && net.blocks.allSatisfy { $0.layers.allSatisfy { $0.bottleneck != nil } })
        #expect(try Verifier().verify(net).deviations == (try Verifier().verify(plain)).deviations)
    }

    /// The fixture edited by onnx in Python: one FusedConv's activation, or one node made another
    /// com.microsoft operator.
    static func edited(_ edit: String, as name: String, in folder: URL) throws -> String {
        let output = folder.appendingPathComponent(name).path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "\(Frameworks.cache)/venv-torch/bin/python")
        process.arguments = [
            "-c",
            """
            import sys, onnx
            from onnx import helper
            m = onnx.load(sys.argv[1])
            fused = [n for n in m.graph.node if n.op_type == "FusedConv"]
            \(edit)
            onnx.save(m, sys.argv[2])
            """,
            Fixtures.path("tv-tiny-ort-extended.onnx"), output,
        ]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return output
    }

    @Test func otherContribOperatorsAreNamed() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let leaky = try Self.edited(
            """
            a = [x for x in fused[1].attribute if x.name == "activation"][0]
            a.s = b"LeakyRelu"
            """, as: "leaky.onnx", in: folder)
        var outcome = try densekit(["inspect", leaky])
        #expect(outcome.status == 2)
        #expect(
            outcome.stderr.hasPrefix("error: \(leaky): FusedConv node '")
                && outcome.stderr.hasSuffix("': expected activation Relu, found activation LeakyRelu\n"),
            "\(outcome.stderr)")
        let gelu = try Self.edited(
            """
            fused[0].op_type = "QuickGelu"
            """, as: "gelu.onnx", in: folder)
        outcome = try densekit(["inspect", gelu])
        #expect(outcome.status == 2)
        #expect(
            outcome.stderr.contains(
                "operator 'QuickGelu' of domain 'com.microsoft' is not supported (of onnxruntime's contrib "
                    + "operators, only FusedConv)"),
            "\(outcome.stderr)")
        #expect(outcome.stderr.split(separator: "\n").count == 1)
    }
}
