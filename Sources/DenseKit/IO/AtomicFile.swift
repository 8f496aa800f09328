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
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent()
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).partial-\(getpid())")
        guard FileManager.default.createFile(atPath: temporary.path, contents: nil) else {
            throw Error.write("cannot create a file in '\(folder.path)' (\(String(cString: strerror(errno))))")
        }
        do {
            let handle = try FileHandle(forWritingTo: temporary)
            defer { try? handle.close() }
            try handle.write(contentsOf: data)
            try handle.synchronize()
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw Error.write("cannot write '\(path)': \(error.localizedDescription)")
        }
        guard rename(temporary.path, url.path) == 0 else {
            let reason = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: temporary)
            throw Error.write("cannot rename into '\(path)': \(reason)")
        }
    }
}
