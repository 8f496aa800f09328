import Foundation

/// Opens any supported model file by its content (falling back to its extension).
public enum ModelLoader {
    public static func load(path: String) throws -> DenseNet {
        guard FileManager.default.fileExists(atPath: path) else { throw ImportError.unreadable("no such file") }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ImportError.unreadable("is a directory")
        }
        if let handle = FileHandle(forReadingAtPath: path) {
            let head = [UInt8]((try? handle.read(upToCount: 8)) ?? Data())
            try? handle.close()
            if head.starts(with: DNKWriter.magic) {
                return try DNKReader.load(path: path)
            }
            if head.starts(with: HDF5File.signature) || head.starts(with: ZipArchive.signature) {
                return try KerasImporter.load(path: path)
            }
        } else {
            throw ImportError.unreadable("cannot open file (permission denied?)")
        }
        if path.hasSuffix(".h5") || path.hasSuffix(".keras") {
            throw ImportError.malformed("not an HDF5 file or .keras archive (bad signature)")
        }
        return try ONNXImporter.load(path: path)
    }
}
