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
        let file = try ModelFile(path: path)
        return try ModelFormats.reader(for: file).read(file)
    }

    /// Whether the file is read through libhdf5 (an HDF5 file, or a zip such as a `.keras` that holds one).
    public static func readsThroughHDF5(path: String) -> Bool {
        guard let file = try? ModelFile(path: path) else { return false }
        // A file no reader recognises (a corrupt zip, say) is refused in the child all the same.
        return (try? ModelFormats.reader(for: file).readsThroughHDF5) ?? (file.kind == .zip || file.kind == .hdf5)
    }
}
