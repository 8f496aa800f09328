import DenseKitGraph

/// A file format DenseKit reads: how its files are told by their content (never by their name) and
/// read into the canonical graph. Each format's folder holds its conformance; `ModelFormats.readers`
/// lists them, and adding a format is its folder and one line there.
package protocol ModelFormat: Sendable {
    /// What the format is called in messages (`ONNX`, `Keras HDF5`, ...).
    var name: String { get }
    /// Whether `file` is of this format (its first bytes, and for a zip its directory).
    func recognizes(_ file: ModelFile) -> Bool
    /// The file's canonical graph, not yet validated (`ModelLoader` validates every graph).
    func read(_ file: ModelFile) throws -> DenseNet
    /// Whether the format is read through libhdf5, which `ModelLoader` runs in a child process.
    var readsThroughHDF5: Bool { get }
}

extension ModelFormat {
    package var readsThroughHDF5: Bool { false }
}

/// Every format DenseKit reads and writes.
package enum ModelFormats {
    /// The readers, asked in this order; ONNX, which has no signature of its own, last.
    package static let readers: [any ModelFormat] = [
        DNKFormat(), KerasHDF5Format(), TorchZipFormat(), KerasZipFormat(), TorchLegacyFormat(),
        SafetensorsFormat(), TFLiteFormat(), ONNXFormat(),
    ]

    /// The reader of `file`; throws naming what the file looks like when no format recognises it.
    package static func reader(for file: ModelFile) throws -> any ModelFormat {
        if case .foreign(let what) = file.kind { throw FileKind.refusal(what) }
        // A corrupt archive is its own error, before any zip-based format is asked.
        if file.kind == .zip { _ = try file.zip() }
        if let reader = readers.first(where: { $0.recognizes(file) }) { return reader }
        if file.kind == .zip, let zip = try? file.zip(), let what = FileKind.zipContents(zip) {
            throw FileKind.refusal(what)
        }
        throw FileKind.refusal("a file of no format DenseKit reads")
    }
}
