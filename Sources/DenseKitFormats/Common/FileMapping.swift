import DenseKitGraph
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A file's bytes mapped read-only into memory, or read into memory by Foundation.
///
/// Mapped, not copied, for `.dnk` files, whose float32 tensors are used in place: Foundation's
/// `Data(contentsOf:)` reads the whole file into memory on Linux (a copy: 8 ms of a 75 MB `.dnk`'s
/// load, docs/performance.md), where a mapping of a file in the page cache costs no copy and its
/// pages are mapped in by the cores that check them (`TensorChecksums`).
///
/// The price of a mapping: if another process truncates the file while it is mapped, reading the
/// pages past the new end raises SIGBUS. Every mapping is recorded in `MappedFiles`, so that the
/// command-line tool's SIGBUS handler can name the file that changed and exit with one line.
package enum FileMapping {
    /// The file's bytes for a reader that parses them, read through a descriptor checked to be a
    /// regular file's.
    package static func contents(path: String, maximumBytes: Int = RegularFile.maximumBytes) throws -> Data {
        let (fd, size) = try RegularFile.open(path, maximumBytes: maximumBytes)
        defer { close(fd) }
        return try RegularFile.read(fd, size: size)
    }

    package static func map(path: String) throws -> Data {
        let (fd, size) = try RegularFile.open(path)
        defer { close(fd) }
        return try map(fd, size: size, path: path)
    }

    /// Maps `size` bytes of the file open as `fd` (which the caller closes; the mapping outlives it).
    package static func map(_ fd: Int32, size: Int, path: String) throws -> Data {
        guard size > 0 else { return Data() }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), address != MAP_FAILED else {
            throw ImportError.unreadable("cannot map file (\(String(cString: strerror(errno))))")
        }
        MappedFiles.record(address, count: size, path: path)
        return Data(
            bytesNoCopy: address, count: size,
            deallocator: .custom { pointer, count in
                MappedFiles.forget(pointer)
                munmap(pointer, count)
            })
    }
}
