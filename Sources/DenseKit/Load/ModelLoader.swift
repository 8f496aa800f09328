import DenseKitExecute
import DenseKitFormats
import DenseKitGraph
import Foundation

/// Opens any supported model file, told by its content, and returns its canonical graph only after
/// it has passed `DenseNet.validate()`: the single gate every format goes through.
public enum ModelLoader {
    /// With `isolation`, a file read through libhdf5 is imported in a child process (`ImportIsolation`),
    /// so that a crash or a hang of the C library on a corrupt file is an error here; every other
    /// format is read in this process. Throws `ImportError`, which leaves the path to the caller.
    public static func load(path: String, isolation: ImportIsolation? = nil) throws -> DenseNet {
        // The file is sniffed once: the format that recognises it says whether libhdf5 reads it.
        let file = try ModelFile(path: path)
        let format = try ModelFormats.reader(for: file)
        let net =
            if let isolation, format.readsThroughHDF5 {
                try isolation.load(path: path)
            } else {
                try format.read(file)
            }
        try net.validate()
        return net
    }
}
