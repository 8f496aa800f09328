import DenseKitGraph
import Foundation

/// A model file as the registry sees it before any reader has parsed it: its path, its first bytes
/// (`FileKind`), and for a zip archive its directory, read once and shared by the readers that ask.
///
/// The file is opened once, non-blocking, and `fstat`ed: anything but a regular file (a FIFO, a
/// device, a folder) is refused before a byte is read. Every read of it, the first bytes, the whole
/// file or its mapping, goes through that descriptor, so the file read is the file checked even if
/// its path is made to name another one meanwhile.
package final class ModelFile: @unchecked Sendable {
    package let path: String
    package let kind: FileKind
    private let descriptor: Int32
    private let size: Int
    private var contents: Data?
    private var directory: Result<ZipArchive, Error>?

    /// Opens the file and reads its first bytes; throws when it is missing, not a regular file or
    /// cannot be read.
    package init(path: String) throws {
        let (descriptor, size) = try RegularFile.open(path)
        let head: Data
        do {
            head = try RegularFile.read(descriptor, size: min(FileKind.headLength, size))
        } catch {
            close(descriptor)
            throw error
        }
        self.path = path
        self.descriptor = descriptor
        self.size = size
        kind = FileKind(head: Array(head))
    }

    deinit { close(descriptor) }

    /// The whole file, read once and kept (for the readers of zip archives, which share it).
    package func data() throws -> Data {
        if let contents { return contents }
        let read = try RegularFile.read(descriptor, size: size)
        contents = read
        return read
    }

    /// The whole file, read anew and not kept: a reader that parses it and drops it frees it at once.
    package func readContents() throws -> Data {
        try contents ?? RegularFile.read(descriptor, size: size)
    }

    /// The file mapped read-only (`FileMapping`).
    package func mapped() throws -> Data { try FileMapping.map(descriptor, size: size, path: path) }

    /// The zip archive's directory (a zip file only: `kind == .zip`).
    package func zip() throws -> ZipArchive {
        if let directory { return try directory.get() }
        let read = Result { try ZipArchive(data: data()) }
        directory = read
        return try read.get()
    }
}
