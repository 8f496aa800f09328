import DenseKitGraph
import Foundation

/// Opens a file a reader was handed, refusing anything but a regular file before a single byte is
/// read: opening a FIFO for reading blocks until someone writes to it (a model path or an ONNX
/// external-data file that is a FIFO hung every command), and a device or a directory is no model.
/// Opened non-blocking, checked with `fstat` on the same descriptor, then switched back to blocking reads.
package enum RegularFile {
    /// The largest file read: the largest DenseNet in the paper (DenseNet-264, float32) is about 130 MB,
    /// and an ONNX file stops at protobuf's 2 GiB. A larger (or sparse) file is refused before anything
    /// is allocated for it.
    package static let maximumBytes = 4 << 30

    /// A descriptor open for reading on the regular file at `path` (the caller closes it), and the
    /// file's size, at most `maximumBytes`.
    package static func open(_ path: String, maximumBytes: Int = maximumBytes) throws -> (descriptor: Int32, size: Int)
    {
        let descriptor = Glibc.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            let reason = errno
            if reason == ENOENT { throw ImportError.unreadable("no such file") }
            throw ImportError.unreadable("cannot open file (\(String(cString: strerror(reason))))")
        }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            let reason = errno
            close(descriptor)
            throw ImportError.unreadable("cannot read file (\(String(cString: strerror(reason))))")
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            close(descriptor)
            throw ImportError.unreadable("is \(kind(of: info.st_mode)), not a regular file")
        }
        guard info.st_size <= maximumBytes else {
            close(descriptor)
            throw ImportError.unreadable("is \(info.st_size) bytes, more than the \(maximumBytes)-byte limit")
        }
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) & ~O_NONBLOCK)
        return (descriptor, Int(info.st_size))
    }

    /// The whole file, `size` bytes, read through `descriptor` (which stays open). A file that ends
    /// before `size` changed while it was read: an error, never a short read taken for the file.
    package static func read(_ descriptor: Int32, size: Int) throws -> Data {
        var data = Data(count: size)
        var failure: Int32 = 0
        var done = 0
        data.withUnsafeMutableBytes { raw in
            while done < size {
                let count = pread(descriptor, raw.baseAddress! + done, size - done, off_t(done))
                if count > 0 {
                    done += count
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    failure = count < 0 ? errno : 0
                    break
                }
            }
        }
        guard failure == 0 else {
            throw ImportError.unreadable("cannot read file (\(String(cString: strerror(failure))))")
        }
        guard done == size else {
            throw ImportError.unreadable("the file changed while it was being read (\(done) of \(size) bytes)")
        }
        return data
    }

    /// What a file that is not regular is, for a message: "a FIFO", "a directory".
    package static func kind(of mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "a special file"
        }
    }
}
