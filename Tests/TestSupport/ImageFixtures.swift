import Foundation

/// The test images `make fixtures-images` builds (photographs from scikit-image's wheel and variants
/// made with Pillow and pypng; not committed), and the frameworks' own preprocessing of them.
public enum ImageFixtures {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String { "fixtures/images is missing: run `make fixtures-images` (make test does)" }
    }

    /// `fixtures/images`, or an error saying how to make it.
    public static func folder() throws -> String {
        let path = Fixtures.root.appendingPathComponent("fixtures/images").path
        guard FileManager.default.fileExists(atPath: path + "/.stamp") else { throw Missing() }
        return path
    }

    public static func photos() throws -> String { try folder() + "/photos" }
    public static func variants() throws -> String { try folder() + "/variants" }

    /// Every test image, photos then variants, each folder in name order.
    public static func all() throws -> [String] {
        try [photos(), variants()].flatMap { dir in
            try FileManager.default.contentsOfDirectory(atPath: dir).filter { !$0.hasPrefix(".") }.sorted().map {
                dir + "/" + $0
            }
        }
    }

    /// The framework's preprocessing of `files` (scripts/preprocess_reference.py in its venv).
    public static func reference(_ preset: String, size: Int, files: [String], in folder: URL) throws -> NPYFile {
        let venv = preset == "keras-densenet" ? "venv-tf" : "venv-torch"
        let python = "\(Frameworks.cache)/\(venv)/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw Frameworks.Failure.noEnvironment(python)
        }
        let out = folder.appendingPathComponent("reference-\(preset).npy").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments =
            [Fixtures.root.appendingPathComponent("scripts/preprocess_reference.py").path, preset, "\(size)", out]
            + files
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let log = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Frameworks.Failure.failed(preset, String(decoding: log, as: UTF8.self))
        }
        return NPYFile(path: out)
    }

    public struct NPYFile { public var path: String }
}

/// CRC-32 (ISO-HDLC, PNG's), for tests that rewrite a PNG chunk and must keep it valid.
public func crc32(_ bytes: some Sequence<UInt8>) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in bytes {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

/// A PNG chunk: length, type, body and CRC (the correct one unless `crc` is given), for tests that
/// make PNGs or rewrite their chunks.
public func pngChunk(_ type: [UInt8], _ body: [UInt8], crc: [UInt8]? = nil) -> [UInt8] {
    withUnsafeBytes(of: UInt32(body.count).bigEndian, Array.init) + type + body
        + (crc ?? withUnsafeBytes(of: crc32(type + body).bigEndian, Array.init))
}
