import DenseKitGraph
import Foundation

/// Writes DenseKit's native `.dnk` (schemas/dnk-format.md): the canonical tensors, the structure
/// with the verifier's summary of it, and the provenance.
public struct DNKModelWriter: ModelWriter {
    public let format = "dnk"
    public init() {}
    /// An int8 model is written with its codes and quantisation (version 5.0).
    public var keepsQuantization: Bool { true }

    public func encode(_ net: DenseNet, dtype: DType, provenance: Provenance) throws -> Data {
        try DNKWriter.encode(net, dtype: dtype, metadata: metadata(net, dtype: dtype, provenance: provenance).json())
    }

    /// The metadata (its JSON keys are pinned to the spec by the tests).
    package func metadata(_ net: DenseNet, dtype: DType, provenance: Provenance) throws -> DNKMetadata {
        let report = try Verifier().verify(net)
        let version = DNKWriter.version(for: net)
        var structure = CanonicalLayout.structure(of: net)
        structure.architecture = report.matches ? report.spec.name : nil
        structure.closest = report.spec.name
        structure.growthRate = report.growthRate
        structure.compression = report.compression
        structure.bottleneck = report.bottleneck
        return DNKMetadata(
            version: "\(version.major).\(version.minor)", structure: structure,
            provenance: .init(
                sourceFile: provenance.sourceFile, sourceSHA256: provenance.sourceSHA256,
                sourceFormat: provenance.sourceFormat,
                producer: provenance.producer, densekitVersion: provenance.densekitVersion,
                convertedAt: provenance.convertedAt,
                dtype: dtype.rawValue))
    }
}
