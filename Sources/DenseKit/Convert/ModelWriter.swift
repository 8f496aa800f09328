import Foundation

/// One output format of `densekit convert`: turns a validated canonical graph into a file's bytes.
///
/// The converter does everything around it (verify, run, write a temporary file, read it back
/// through `ModelLoader`, run and compare, rename into place), so a writer only encodes.
public protocol ModelWriter: Sendable {
    /// The name `--to` takes and `--json` reports (`dnk`, ...).
    var format: String { get }
    /// The file's bytes; conv and classifier weights in `dtype`.
    func encode(_ net: DenseNet, dtype: DType, provenance: Provenance) throws -> Data
}

/// Where a written file came from, recorded in it where the format has room.
public struct Provenance: Sendable {
    public var sourceFile: String
    public var sourceSHA256: String
    public var sourceFormat: String
    public var producer: String
    public var densekitVersion: String
    public var convertedAt: String

    public init(sourceFile: String, sourceSHA256: String, sourceFormat: String, producer: String,
                densekitVersion: String = DenseKitVersion.string,
                convertedAt: String = ISO8601DateFormatter().string(from: Date())) {
        self.sourceFile = sourceFile
        self.sourceSHA256 = sourceSHA256
        self.sourceFormat = sourceFormat
        self.producer = producer
        self.densekitVersion = densekitVersion
        self.convertedAt = convertedAt
    }
}
