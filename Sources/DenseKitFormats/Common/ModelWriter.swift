import DenseKitGraph
import Foundation

/// One output format of `densekit convert`: turns a validated canonical graph into a file's bytes.
///
/// The converter does everything around it (verify, run, write a temporary file, read it back
/// through `ModelLoader`, run and compare, rename into place), so a writer only says what its
/// format makes of the model and encodes.
public protocol ModelWriter: Sendable {
    /// The name `--to` takes and `--json` reports (`dnk`, ...).
    var format: String { get }
    /// The graph as the file will hold it (rewritten where the layout needs it, exactly for
    /// DenseKit's executor) and what the target adds, drops or changes; throws `UnsupportedTarget`
    /// when the format cannot hold the model.
    func prepare(_ net: DenseNet, dtype: DType) throws -> (net: DenseNet, conventions: [Convention])
    /// The file's bytes for a prepared graph; conv and classifier weights in `dtype`.
    func encode(_ net: DenseNet, dtype: DType, provenance: Provenance) throws -> Data
    /// Whether the format holds an int8 model as it is (its codes and quantisation); the others take one only
    /// dequantised (`convert --dequantize`).
    var keepsQuantization: Bool { get }
}

extension ModelWriter {
    public var keepsQuantization: Bool { false }

    /// A format that holds every model as it is.
    public func prepare(_ net: DenseNet, dtype: DType) throws -> (net: DenseNet, conventions: [Convention]) {
        (net, [])
    }

    /// Refuses a dtype the format is not written in here.
    package func require(_ dtype: DType, in allowed: [DType]) throws {
        guard allowed.contains(dtype) else {
            throw UnsupportedTarget(
                format,
                """
                weights are written as \(allowed.map(\.rawValue).joined(separator: " or ")), not \
                \(dtype.rawValue) (--dtype)
                """
            )
        }
    }
}

/// Where a written file came from, recorded in it where the format has room.
public struct Provenance: Sendable {
    public var sourceFile: String
    public var sourceSHA256: String
    public var sourceFormat: String
    public var producer: String
    public var densekitVersion: String
    public var convertedAt: String

    public init(
        sourceFile: String, sourceSHA256: String, sourceFormat: String, producer: String,
        densekitVersion: String = DenseKitVersion.string,
        convertedAt: String = ISO8601DateFormatter().string(from: Date())
    ) {
        self.sourceFile = sourceFile
        self.sourceSHA256 = sourceSHA256
        self.sourceFormat = sourceFormat
        self.producer = producer
        self.densekitVersion = densekitVersion
        self.convertedAt = convertedAt
    }
}
