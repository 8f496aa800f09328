import DenseKitGraph
import Foundation

/// What a file is, told from its first bytes (never from its name), so that a file DenseKit does not
/// read is refused as what it looks like rather than as a broken ONNX or Keras file.
package enum FileKind: Equatable {
    case dnk
    /// An HDF5 file (Keras `.h5`, `.weights.h5`).
    case hdf5
    /// A zip archive: a `.keras` model, or something else that `ZipArchive` can tell.
    case zip
    /// torch.save's legacy format: pickles in a row, the first its magic number.
    case legacyTorch
    /// safetensors: u64 header length, then the JSON header's `{` (an ONNX protobuf has its producer
    /// name there).
    case safetensors
    /// A TensorFlow Lite model (FlatBuffer identifier "TFL3").
    case tflite
    /// Anything else: tried as an ONNX protobuf, which has no magic number of its own.
    case protobufCandidate
    /// A format DenseKit does not read; the associated text says what it looks like.
    case foreign(String)

    package static let headLength = 16

    package init(head: [UInt8]) {
        if head.isEmpty {
            self = .foreign("an empty file")
            return
        }
        if head.starts(with: DNKWriter.magic) {
            self = .dnk
            return
        }
        if head.starts(with: HDF5File.signature) {
            self = .hdf5
            return
        }
        if head.starts(with: ZipArchive.signature) {
            self = .zip
            return
        }
        if head.count >= 9, head[8] == UInt8(ascii: "{") {
            self = .safetensors
            return
        }
        // A FlatBuffer's file identifier follows its root offset: TensorFlow Lite's is "TFL3".
        if head.count >= 8, head[4..<8].elementsEqual("TFL3".utf8) {
            self = .tflite
            return
        }
        if head.starts(with: [0x80, 0x02, 0x8A, 0x0A] + PTHReader.legacyMagic.prefix(8)) {
            self = .legacyTorch
            return
        }
        if let what = Self.foreignFormat(head) {
            self = .foreign(what)
            return
        }
        self = .protobufCandidate
    }

    /// Formats recognised by their signatures that DenseKit does not read (yet).
    private static func foreignFormat(_ head: [UInt8]) -> String? {
        if head.count >= 2, head[0] == 0x80, (2...5).contains(head[1]) { return "a Python pickle" }
        let signatures: [([UInt8], String)] = [
            ([0x89, 0x50, 0x4E, 0x47], "a PNG image"), ([0xFF, 0xD8, 0xFF], "a JPEG image"),
            ([0x1F, 0x8B], "a gzip archive"), ([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59], "a NumPy .npy array"),
            ([0x25, 0x50, 0x44, 0x46], "a PDF document"), ([0x7F, 0x45, 0x4C, 0x46], "an executable (ELF)"),
            ([0x47, 0x47, 0x55, 0x46], "a GGUF file"), ([0x42, 0x5A, 0x68], "a bzip2 archive"),
            ([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00], "an xz archive"), ([0x28, 0xB5, 0x2F, 0xFD], "a zstd archive"),
        ]
        for (magic, what) in signatures where head.starts(with: magic) { return what }
        let text = head.allSatisfy { $0 == 0x09 || $0 == 0x0A || $0 == 0x0D || (0x20..<0x7F).contains($0) }
        if text {
            if let first = head.first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }),
                first == UInt8(ascii: "{") || first == UInt8(ascii: "[")
            {
                return "JSON text"
            }
            return "text"
        }
        return nil
    }

    /// What a zip archive that is not a `.keras` model holds.
    package static func zipContents(_ zip: ZipArchive) -> String? {
        if zip.entries["model.weights.h5"] != nil || zip.entries["config.json"] != nil { return nil }
        return "a zip archive that is not a .keras model"
    }

    /// Whether a zip archive is a torch.save checkpoint (`<name>/data.pkl`).
    package static func isTorchArchive(_ zip: ZipArchive) -> Bool {
        zip.entries.keys.contains { $0.hasSuffix("/data.pkl") }
    }

    /// The refusal for a file of this foreign kind.
    package static func refusal(_ what: String) -> ImportError {
        .unrecognized(looksLike: what)
    }
}
