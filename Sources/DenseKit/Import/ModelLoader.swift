import Foundation

/// Opens any supported model file by its content (falling back to its extension).
public enum ModelLoader {
    public static func load(path: String) throws -> DenseNet {
        guard FileManager.default.fileExists(atPath: path) else { throw ImportError.unreadable("no such file") }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ImportError.unreadable("is a directory")
        }
        guard let head = head(path) else { throw ImportError.unreadable("cannot open file (permission denied?)") }
        if head.starts(with: DNKWriter.magic) {
            return try DNKReader.load(path: path)
        }
        if isHDF5(head) {
            return try KerasImporter.load(path: path)
        }
        if path.hasSuffix(".h5") || path.hasSuffix(".keras") {
            throw ImportError.malformed("not an HDF5 file or .keras archive (bad signature)")
        }
        return try ONNXImporter.load(path: path)
    }

    /// Whether the file is read through libhdf5 (an HDF5 file, or a `.keras` zip holding one).
    public static func readsThroughHDF5(path: String) -> Bool { head(path).map(isHDF5) ?? false }

    private static func isHDF5(_ head: [UInt8]) -> Bool {
        head.starts(with: HDF5File.signature) || head.starts(with: ZipArchive.signature)
    }

    /// The file's first 8 bytes, or nil when it cannot be opened.
    private static func head(_ path: String) -> [UInt8]? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return [UInt8]((try? handle.read(upToCount: 8)) ?? Data())
    }
}
