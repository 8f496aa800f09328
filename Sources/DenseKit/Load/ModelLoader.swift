import DenseKitExecute
import DenseKitFormats
import DenseKitGraph
import Foundation

/// Opens any supported model file, told by its content, and returns its canonical graph only after
/// it has passed `DenseNet.validate()`: the single gate every format goes through.
public enum ModelLoader {
    /// With `isolation`, a file read through libhdf5 is imported in a child process (`ImportIsolation`),
    /// so that a crash or a hang of the C library on a corrupt file is an error here; every other
    /// format is read in this process.
    public static func load(path: String, isolation: ImportIsolation? = nil) throws -> DenseNet {
        do {
            let net =
                try isolation.flatMap { readsThroughHDF5(path: path) ? try $0.load(path: path) : nil }
                ?? importGraph(path: path)
            try net.validate()
            return net
        } catch var error as ImportError {
            error.file = error.file ?? path
            throw error
        }
    }

    /// The importer's graph, not yet validated.
    package static func importGraph(path: String) throws -> DenseNet {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ImportError.unreadable("no such file")
        }
        if isDirectory.boolValue { throw ImportError.unreadable("is a directory") }
        guard let head = head(path) else { throw ImportError.unreadable("cannot open file (permission denied?)") }
        switch FileKind(head: head) {
        case .dnk:
            return try DNKReader.load(path: path)
        case .hdf5:
            return try KerasImporter.load(path: path)
        case .zip:
            let data = try map(path)
            let zip = try ZipArchive(data: data)
            if FileKind.isTorchArchive(zip) { return try PTHReader.load(data: data, path: path) }
            if let what = FileKind.zipContents(zip) { throw FileKind.refusal(what) }
            return try KerasImporter.load(data: data, path: path, inMemory: false)
        case .legacyTorch:
            return try PTHReader.load(path: path)
        case .safetensors:
            return try SafetensorsReader.load(path: path)
        case .foreign(let what):
            throw FileKind.refusal(what)
        case .protobufCandidate:
            return try ONNXImporter.load(path: path)
        }
    }

    /// Whether the file is read through libhdf5 (an HDF5 file, or a zip such as a `.keras` that holds one).
    public static func readsThroughHDF5(path: String) -> Bool {
        guard let head = head(path) else { return false }
        let kind = FileKind(head: head)
        guard kind == .zip else { return kind == .hdf5 }
        // A zip read through libhdf5 is a .keras archive, not a torch.save one.
        return (try? ZipArchive(data: map(path))).map { !FileKind.isTorchArchive($0) } ?? true
    }

    package static func map(_ path: String) throws -> Data {
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe)
        } catch {
            throw ImportError.unreadable("cannot read file (\(error.localizedDescription))")
        }
    }

    /// The file's first bytes (fewer if it is shorter), or nil when it cannot be opened or read.
    /// POSIX calls: Foundation's FileHandle took 0.1 ms of every load, on its first use.
    private static func head(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: FileKind.headLength)
        var count = 0
        while count < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, $0.count - count) }
            if n > 0 {
                count += n
            } else if n < 0 && errno == EINTR {
                continue
            } else if n == 0 {
                break
            } else {
                return nil
            }
        }
        return Array(bytes.prefix(count))
    }
}
