import DenseKitGraph
import Foundation

/// Writes DenseKit's native `.dnk` (schemas/dnk-format.md): the canonical tensors, the structure
/// with the verifier's summary of it, and the provenance.
public struct DNKModelWriter: ModelWriter {
    public let format = "dnk"
    public init() {}

    public func encode(_ net: DenseNet, dtype: DType, provenance: Provenance) throws -> Data {
        try DNKWriter.encode(net, dtype: dtype, metadata: metadata(net, dtype: dtype, provenance: provenance))
    }

    /// The metadata JSON object (its keys are pinned to the spec by the tests).
    package func metadata(_ net: DenseNet, dtype: DType, provenance p: Provenance) throws -> [String: Any] {
        let report = try Verifier().verify(net)
        let version = DNKWriter.version(for: net)
        return [
            "format": "densekit-native", "version": "\(version.major).\(version.minor)",
            "structure": CanonicalLayout.structure(of: net).merging([
                "architecture": report.matches ? report.spec.name : NSNull(), "closest": report.spec.name,
                "growthRate": report.growthRate, "compression": report.compression ?? NSNull(),
                "bottleneck": report.bottleneck,
            ]) { a, _ in a },
            "provenance": [
                "sourceFile": p.sourceFile, "sourceSHA256": p.sourceSHA256, "sourceFormat": p.sourceFormat,
                "producer": p.producer, "densekitVersion": p.densekitVersion, "convertedAt": p.convertedAt,
                "dtype": dtype.rawValue,
            ] as [String: Any],
        ]
    }
}
