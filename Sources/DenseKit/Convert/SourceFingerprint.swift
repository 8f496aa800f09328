import Crypto
import DenseKitGraph
import Foundation

/// The SHA-256 of a source file, recorded in every converted file's provenance (swift-crypto's).
public enum SourceFingerprint {
    /// The file's SHA-256 as lowercase hex, read in 1 MiB chunks.
    public static func sha256(ofFile path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ImportError.unreadable("cannot open for hashing")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        do {
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        } catch {
            throw ImportError.unreadable("cannot read for hashing (\(error.localizedDescription))")
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
