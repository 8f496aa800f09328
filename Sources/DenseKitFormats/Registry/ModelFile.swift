import DenseKitGraph
import Foundation

/// A model file as the registry sees it before any reader has parsed it: its path, its first bytes
/// (`FileKind`), and for a zip archive its directory, read once and shared by the readers that ask.
package final class ModelFile: @unchecked Sendable {
    package let path: String
    package let kind: FileKind
    private var contents: Data?
    private var directory: Result<ZipArchive, Error>?

    /// Reads the file's first bytes; throws when it is missing, not a regular file (a directory, a
    /// FIFO, a device) or cannot be opened.
    package init(path: String) throws {
        let descriptor = try RegularFile.open(path).descriptor
        defer { close(descriptor) }
        guard let head = Self.head(descriptor) else { throw ImportError.unreadable("cannot read file") }
        self.path = path
        kind = FileKind(head: head)
    }

    /// The whole file, read once (mapped where Foundation finds that safe).
    package func data() throws -> Data {
        if let contents { return contents }
        let read = try FileMapping.contents(path: path)
        contents = read
        return read
    }

    /// The zip archive's directory (a zip file only: `kind == .zip`).
    package func zip() throws -> ZipArchive {
        if let directory { return try directory.get() }
        let read = Result { try ZipArchive(data: data()) }
        directory = read
        return try read.get()
    }

    /// The file's first bytes (fewer if it is shorter), or nil when it cannot be read.
    private static func head(_ descriptor: Int32) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: FileKind.headLength)
        var count = 0
        while count < bytes.count {
            let got = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + count, $0.count - count) }
            if got > 0 {
                count += got
            } else if got < 0 && errno == EINTR {
                continue
            } else if got == 0 {
                break
            } else {
                return nil
            }
        }
        return Array(bytes.prefix(count))
    }
}
