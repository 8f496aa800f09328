import DenseKitGraph
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A file's bytes mapped read-only into memory.
///
/// Foundation's `Data(contentsOf:options: .alwaysMapped)` reads the whole file into memory on Linux
/// (a copy: measured 8 ms for a 75 MB `.dnk`, most of its load); a mapping of a file in the page cache
/// costs no copy. Its pages are mapped in as they are read: the checksums fault each region's pages
/// in on the core that hashes it (`TensorChecksums`), and pages no one reads are never mapped
/// (MAP_POPULATE, mapping the whole file up front on one core, cost 2 ms of a 10 ms load).
/// Used for `.dnk` files, whose float32 tensors are used in place. (As with any
/// mapping, a file truncated by another process while it is open would fault on access.)
package enum FileMapping {
    /// The file's bytes for a reader that parses them (mapped where Foundation finds that safe).
    package static func contents(path: String) throws -> Data {
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw ImportError.unreadable("cannot read file (\(error.localizedDescription))")
        }
    }

    package static func map(path: String) throws -> Data {
        let (fd, size) = try RegularFile.open(path)
        defer { close(fd) }
        guard size > 0 else { return Data() }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw ImportError.unreadable("cannot map file (\(String(cString: strerror(errno))))")
        }
        return Data(bytesNoCopy: p, count: size, deallocator: .custom { pointer, count in munmap(pointer, count) })
    }
}
