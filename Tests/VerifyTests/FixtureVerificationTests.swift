import DenseKit
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// Real exports: the counts DenseKit derives equal the ones torch and Keras reported when the
/// fixture was made, whatever the exporter folded; full-size files verify as their architecture.
@Suite struct FixtureVerificationTests {
    static let tiny: [(model: String, meta: String)] = [
        ("tv-tiny-legacy-opset11-unfolded.onnx", "tv-tiny-legacy-opset11-unfolded.meta.json"),
        ("tv-tiny-legacy-opset17.onnx", "tv-tiny-legacy-opset17.meta.json"),
        ("tv-tiny-dynamo-opset18.onnx", "tv-tiny-dynamo-opset18.meta.json"),
        ("tv-tiny-legacy-opset17-fp16.onnx", "tv-tiny-legacy-opset17-fp16.meta.json"),
        ("cifar-bc-tiny-legacy-opset17.onnx", "cifar-bc-tiny-legacy-opset17.meta.json"),
        ("cifar-plain-tiny-legacy-opset17.onnx", "cifar-plain-tiny-legacy-opset17.meta.json"),
        ("keras2-tiny-tf2onnx.onnx", "keras2-tiny-tf2onnx.meta.json"),
        ("keras2-tiny.h5", "keras2-tiny.meta.json"),
        ("keras2-tiny-weights.h5", "keras2-tiny.meta.json"),
        ("keras3-tiny.h5", "keras3-tiny.meta.json"),
        ("keras3-tiny.weights.h5", "keras3-tiny.meta.json"),
        ("keras3-tiny.keras", "keras3-tiny.meta.json"),
    ]

    @Test(arguments: tiny)
    func countsMatchTheFramework(_ fixture: (model: String, meta: String)) throws {
        let net = try ModelLoader.load(path: Fixtures.path(fixture.model))
        let meta = try Fixtures.meta(Fixtures.path(fixture.meta))
        let report = try Verifier().verify(net)
        #expect(report.parameters.trainable == meta.trainable)
        #expect(report.parameters.withBatchNormStatistics == meta.withBatchNormStatistics)
        #expect(!report.matches)  // tiny nets are no paper architecture
    }

    @Test func cifarNetsAreComparedWithCIFARArchitectures() throws {
        let plain = try Verifier().verify(
            try ModelLoader.load(path: Fixtures.path("cifar-plain-tiny-legacy-opset17.onnx")))
        #expect(plain.spec.name == "densenet-L40-k12")
        #expect(!plain.bottleneck && plain.compression == 1)
        let bc = try Verifier().verify(try ModelLoader.load(path: Fixtures.path("cifar-bc-tiny-legacy-opset17.onnx")))
        #expect(bc.spec.stem == .cifar && bc.bottleneck && bc.compression == 0.5)
    }

    /// (file, architecture) for every full-size file `make fixtures-full` writes.
    static let full: [(String, String)] = [
        ("densenet121-legacy-opset11-unfolded.onnx", "densenet121"),
        ("densenet121-legacy-opset17.onnx", "densenet121"),
        ("densenet121-dynamo-opset18.onnx", "densenet121"),
        ("keras2-densenet121-tf2onnx.onnx", "densenet121"),
        ("keras2-densenet121.h5", "densenet121"),
        ("keras2-densenet121-weights.h5", "densenet121"),
        ("keras3-densenet121.h5", "densenet121"),
        ("keras3-densenet121.weights.h5", "densenet121"),
        ("keras3-densenet121.keras", "densenet121"),
        ("keras3-densenet169.h5", "densenet169"),
        ("keras3-densenet169.weights.h5", "densenet169"),
        ("keras3-densenet169.keras", "densenet169"),
        ("keras2-densenet169.h5", "densenet169"),
        ("keras2-densenet169-weights.h5", "densenet169"),
        ("densenet169-legacy-opset17.onnx", "densenet169"),
        ("densenet201-legacy-opset17.onnx", "densenet201"),
        ("densenet161-legacy-opset17.onnx", "densenet161"),
        ("densenet121-zoo-opset9.onnx", "densenet121"),
    ]

    @Test(.enabled(if: Fixtures.full != nil, "full-size fixtures not built (make fixtures-full)"), arguments: full)
    func fullSizeFilesVerifyWithExactCounts(_ fixture: (String, String)) throws {
        let folder = try #require(Fixtures.full)
        let net = try ModelLoader.load(path: folder + "/" + fixture.0)
        let report = try Verifier().verify(net)
        #expect(report.matches, "\(report.deviations)")
        #expect(report.spec.name == fixture.1)
        // Published counts (torch convention, Keras total where Keras has the model): densenet-facts.md.
        let published: [String: (Int, Int?, [Int], Int)] = [
            "densenet121": (7_978_856, 8_062_504, [6, 12, 24, 16], 32),
            "densenet169": (14_149_480, 14_307_880, [6, 12, 32, 32], 32),
            "densenet201": (20_013_928, 20_242_984, [6, 12, 48, 32], 32),
            "densenet161": (28_681_000, nil, [6, 12, 36, 24], 48),
        ]
        let counts = try #require(published[fixture.1])
        #expect(report.parameters.trainable == counts.0)
        if let keras = counts.1 { #expect(report.parameters.withBatchNormStatistics == keras) }
        #expect(net.blocks.map(\.layers.count) == counts.2)
        #expect(net.blocks.allSatisfy { $0.layers.allSatisfy { $0.growth == counts.3 } })
    }
}
