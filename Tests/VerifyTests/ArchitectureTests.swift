import DenseKit
import DenseKitGraph
import TestSupport
import Testing

/// Every architecture built to its spec verifies, with the parameter counts the paper, torchvision
/// and Keras publish (../shared/densenet-facts.md), not counts computed by the code under test.
@Suite struct ArchitectureTests {
    /// (name, classes, torch-convention count, Keras total or nil, tolerance in parameters)
    static let published: [(String, Int, Int, Int?, Int)] = [
        ("densenet121", 1000, 7_978_856, 8_062_504, 0),
        ("densenet169", 1000, 14_149_480, 14_307_880, 0),
        ("densenet201", 1000, 20_013_928, 20_242_984, 0),
        ("densenet264", 1000, 33_337_704, nil, 0),
        ("densenet161", 1000, 28_681_000, nil, 0),
        ("densenet-L40-k12", 10, 1_019_722, nil, 0),
        ("densenet-L40-k12", 100, 1_060_132, nil, 0),
        ("densenet-bc-L100-k12", 100, 800_032, nil, 0),
        ("densenet-bc-L100-k12", 10, 769_000, nil, 5_000),  // "0.769M"
        ("densenet-L100-k12", 10, 6_980_000, nil, 5_000),  // "6.98M"
        ("densenet-L100-k24", 10, 27_250_000, nil, 5_000),  // "27.25M"
        ("densenet-bc-L250-k24", 10, 15_320_000, nil, 5_000),  // "15.32M"
        ("densenet-bc-L190-k40", 10, 25_620_000, nil, 5_000),  // "25.62M"
    ]

    @Test(arguments: published)
    func specVerifiesWithPublishedCounts(_ expected: (String, Int, Int, Int?, Int)) throws {
        let spec = try #require(ArchitectureSpec.named(expected.0))
        let net = Synthetic.denseNet(spec, classes: expected.1, inputSize: spec.inputSize)
        let report = try Verifier().verify(net)
        #expect(report.matches, "\(report.deviations)")
        #expect(report.spec.name == expected.0)
        #expect(report.classes == expected.1)
        #expect(abs(report.parameters.trainable - expected.2) <= expected.4, "trainable \(report.parameters.trainable)")
        if let keras = expected.3 { #expect(report.parameters.withBatchNormStatistics == keras) }
        #expect(spec.parameterCount(classes: expected.1) == report.parameters)
    }

    @Test func everyContractNameIsKnown() {
        #expect(
            ArchitectureSpec.all.map(\.name) == [
                "densenet121", "densenet169", "densenet201", "densenet264", "densenet161",
                "densenet-L40-k12", "densenet-L100-k12", "densenet-L100-k24",
                "densenet-bc-L100-k12", "densenet-bc-L250-k24", "densenet-bc-L190-k40",
            ])
    }

    @Test func classesAreReportedNotChecked() throws {
        let net = Synthetic.denseNet(try #require(ArchitectureSpec.named("densenet121")), classes: 14)
        let report = try Verifier().verify(net)
        #expect(report.matches && report.spec.name == "densenet121" && report.classes == 14)
    }

    @Test func transitionWidthsFollowTheta() throws {
        #expect(try #require(ArchitectureSpec.named("densenet121")).transitionWidths == [128, 256, 512])
        #expect(try #require(ArchitectureSpec.named("densenet169")).transitionWidths == [128, 256, 640])
        #expect(try #require(ArchitectureSpec.named("densenet161")).transitionWidths == [192, 384, 1056])
        #expect(try #require(ArchitectureSpec.named("densenet-L40-k12")).transitionWidths == [160, 304])
    }
}
