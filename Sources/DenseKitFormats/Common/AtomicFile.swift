import Foundation

/// Writes files so that a reader never sees a partial one: a new temporary file in the same folder,
/// written and flushed through its own descriptor, then renamed over the destination.
///
/// - The destination must be a regular file or not exist: renaming over a device (`/dev/null` as
///   root), a FIFO or a folder would replace it, so such an output is refused before anything is
///   written.
/// - The temporary file's name is `.<name>.partial-<pid>-<random>`, created with `O_CREAT | O_EXCL |
///   O_NOFOLLOW`: a file or a symlink planted under that name is never written through. It is renamed
///   into place only if the name still holds the file created (device and inode), not one swapped in.
/// - On any failure the temporary file is removed; on SIGINT or SIGTERM too, once the program has
///   called `PartialFiles.removeOnTermination()`. Those a killed process left (SIGKILL) are removed the
///   next time that output is written, once their process is gone.
public enum AtomicFile {
    /// The longest file name the file systems DenseKit writes to take (NAME_MAX on Linux).
    static let maximumNameBytes = 255

    /// Whether the two paths name the same existing file (device and inode: links and other spellings
    /// of the path included).
    public static func sameFile(_ first: String, _ second: String) -> Bool {
        var firstInfo = stat()
        var secondInfo = stat()
        guard stat(first, &firstInfo) == 0, stat(second, &secondInfo) == 0 else { return false }
        return firstInfo.st_dev == secondInfo.st_dev && firstInfo.st_ino == secondInfo.st_ino
    }

    public static func write(_ data: Data, to path: String) throws {
        let temporary = try writeTemporary(data, beside: path)
        try commit(temporary, to: path)
    }

    /// Refuses an output that exists and is not a regular file (following a symlink to what it names).
    public static func checkDestination(_ path: String) throws {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw WriteError.destination(
                problem: "is \(RegularFile.kind(of: info.st_mode)), not a regular file: DenseKit writes a new file "
                    + "and renames it into place, which would replace it")
        }
    }

    /// Writes `data` to a new hidden file in `path`'s folder and returns its path; nothing is left
    /// behind if that fails.
    public static func writeTemporary(_ data: Data, beside path: String) throws -> String {
        try checkDestination(path)
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        PartialFiles.removeStale(of: url.lastPathComponent, in: folder)
        let temporary = (folder as NSString).appendingPathComponent(PartialFiles.name(for: url.lastPathComponent))
        let fd = PartialFiles.create(temporary)
        guard fd >= 0 else {
            throw WriteError.system(
                step: "cannot create a file in '\(folder)'", reason: String(cString: strerror(errno)))
        }
        // Plain POSIX writes, so that a full disk or a file-size limit is reported by its own name.
        var failure: Int32 = 0
        data.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count && failure == 0 {
                let written = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                if written > 0 {
                    done += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    failure = written < 0 ? errno : EIO
                }
            }
        }
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        if close(fd) != 0 && failure == 0 { failure = errno }
        guard failure == 0 else {
            discard(temporary)
            throw WriteError.system(step: "cannot write '\(path)'", reason: String(cString: strerror(failure)))
        }
        return temporary
    }

    /// Renames a temporary file from `writeTemporary` into place (removing it if that fails), unless
    /// another process has replaced it since it was written.
    public static func commit(_ temporary: String, to path: String) throws {
        do {
            try checkDestination(path)
            guard PartialFiles.isUnchanged(temporary) else {
                throw WriteError.temporaryReplaced(temporary)
            }
        } catch {
            discard(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            discard(temporary)
            throw WriteError.system(step: "cannot rename into '\(path)'", reason: reason)
        }
        PartialFiles.forget(temporary)
    }

    public static func discard(_ temporary: String) {
        unlink(temporary)
        PartialFiles.forget(temporary)
    }
}
