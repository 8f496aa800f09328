import Foundation

/// Writes files so that a reader never sees a partial one: a temporary file in the same folder,
/// flushed, then renamed over the destination. On any failure the temporary file is removed.
public enum AtomicFile {
    public enum Error: Swift.Error, CustomStringConvertible {
        case write(String)
        public var description: String {
            switch self { case .write(let m): return m }
        }
    }

    public static func write(_ data: Data, to path: String) throws {
        let temporary = try writeTemporary(data, beside: path)
        try commit(temporary, to: path)
    }

    /// Writes `data` to a new hidden file in `path`'s folder and returns its path; nothing is left
    /// behind if that fails.
    public static func writeTemporary(_ data: Data, beside path: String) throws -> String {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent()
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).partial-\(getpid())").path
        guard FileManager.default.createFile(atPath: temporary, contents: nil) else {
            throw Error.write("cannot create a file in '\(folder.path)' (\(String(cString: strerror(errno))))")
        }
        do {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporary))
            defer { try? handle.close() }
            try handle.write(contentsOf: data)
            try handle.synchronize()
        } catch {
            discard(temporary)
            throw Error.write("cannot write '\(path)': \(error.localizedDescription)")
        }
        return temporary
    }

    /// Renames a temporary file from `writeTemporary` into place (removing it if that fails).
    public static func commit(_ temporary: String, to path: String) throws {
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            discard(temporary)
            throw Error.write("cannot rename into '\(path)': \(reason)")
        }
    }

    public static func discard(_ temporary: String) {
        try? FileManager.default.removeItem(atPath: temporary)
    }
}
