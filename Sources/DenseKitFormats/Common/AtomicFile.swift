import Foundation

/// Writes files so that a reader never sees a partial one: a temporary file in the same folder,
/// flushed, then renamed over the destination. On any failure the temporary file is removed.
public enum AtomicFile {
    public enum Error: Swift.Error, CustomStringConvertible {
        case write(String)
        public var description: String {
            switch self {
            case .write(let m): return m
            }
        }
    }

    /// Whether the two paths name the same existing file (device and inode: links and other spellings
    /// of the path included).
    public static func sameFile(_ first: String, _ second: String) -> Bool {
        var a = stat()
        var b = stat()
        guard stat(first, &a) == 0, stat(second, &b) == 0 else { return false }
        return a.st_dev == b.st_dev && a.st_ino == b.st_ino
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
        // Plain POSIX writes, so that a full disk or a file-size limit is reported by its own name.
        let fd = open(temporary, O_WRONLY | O_TRUNC)
        var failure = fd < 0 ? errno : 0
        if fd >= 0 {
            data.withUnsafeBytes { raw in
                var done = 0
                while done < raw.count && failure == 0 {
                    let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                    if n > 0 {
                        done += n
                    } else if n < 0 && errno == EINTR {
                        continue
                    } else {
                        failure = n < 0 ? errno : EIO
                    }
                }
            }
            if failure == 0 && fsync(fd) != 0 { failure = errno }
            if close(fd) != 0 && failure == 0 { failure = errno }
        }
        guard failure == 0 else {
            discard(temporary)
            throw Error.write("cannot write '\(path)': \(String(cString: strerror(failure)))")
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
