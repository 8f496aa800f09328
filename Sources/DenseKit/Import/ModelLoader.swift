import Foundation

/// Opens any supported model file by its content (falling back to its extension).
public enum ModelLoader {
    public static func load(path: String) throws -> DenseNet {
        guard FileManager.default.fileExists(atPath: path) else { throw ImportError.unreadable("no such file") }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw ImportError.unreadable("is a directory")
        }
        return try ONNXImporter.load(path: path)
    }
}
