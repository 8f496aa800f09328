import DenseKitGraph
import Foundation

/// Reads the stored (uncompressed) members of a zip archive, as Keras writes `.keras` files.
///
/// Layout: local headers (signature 0x04034b50) with the data, then the central directory
/// (0x02014b50 entries), then the end-of-central-directory record (0x06054b50, within the last
/// 64 KiB + 22 bytes). Every offset and size is checked against the archive, and each member's
/// CRC-32 against its data.
///
/// Why not ZIPFoundation (0.9.20, which resolves here): its in-memory archive (`Archive(data:)`, what
/// a reader of mapped bytes and the fuzz targets need) traps on hostile files. Mutating a torchvision
/// `.pth` and a Keras `.keras` fixture (1 to 4 random bytes, every seventh case truncated) stopped
/// the process with "Range requires lowerBound <= upperBound" in `Archive+MemoryFile.swift:59` within
/// the first cases, where this reader returns an error. It is not faster either: extracting every
/// member of DenseNet-121's `.pth` with CRC checks took 97 ms, the same as this reader's copy and
/// CRC (93 ms; the CPU: docs/performance.md).
package struct ZipArchive {
    package struct Entry {
        package var name: String
        package var method: Int
        package var size: Int
        package var crc: UInt32
        package var localHeader: Int
    }

    package let data: Data
    package private(set) var entries: [String: Entry] = [:]

    package static let signature: [UInt8] = [0x50, 0x4B, 0x03, 0x04]

    package init(data: Data) throws {
        self.data = data
        let archiveSize = data.count
        guard archiveSize >= 22 else { throw ImportError.malformed("zip archive too short") }
        var eocd = -1
        var position = archiveSize - 22
        while position >= max(0, archiveSize - 22 - 65535) {
            if u32(position) == 0x0605_4B50 {
                eocd = position
                break
            }
            position -= 1
        }
        guard eocd >= 0 else {
            throw ImportError.malformed("zip archive has no end-of-central-directory record (truncated?)")
        }
        let count = Int(u16(eocd + 10))
        let size = Int(u32(eocd + 12))
        let offset = Int(u32(eocd + 16))
        guard count <= 4096, offset + size <= eocd else {
            throw ImportError.malformed("zip central directory out of bounds")
        }
        var cursor = offset
        for _ in 0..<count {
            guard cursor + 46 <= eocd, u32(cursor) == 0x0201_4B50 else {
                throw ImportError.malformed("zip central directory entry corrupt at byte \(cursor)")
            }
            let nameLength = Int(u16(cursor + 28))
            let extra = Int(u16(cursor + 30))
            let comment = Int(u16(cursor + 32))
            guard cursor + 46 + nameLength <= eocd else { throw ImportError.malformed("zip entry name out of bounds") }
            let name = String(
                decoding: data[(data.startIndex + cursor + 46)..<(data.startIndex + cursor + 46 + nameLength)],
                as: UTF8.self)
            guard !name.hasPrefix("/"), !name.split(separator: "/").contains("..") else {
                throw ImportError.malformed(.entry(kind: "zip entry", name: name), problem: "escapes the archive")
            }
            let compressed = Int(u32(cursor + 20))
            let uncompressed = Int(u32(cursor + 24))
            let entry = Entry(
                name: name, method: Int(u16(cursor + 10)), size: uncompressed, crc: u32(cursor + 16),
                localHeader: Int(u32(cursor + 42)))
            guard entry.method != 0 || compressed == uncompressed else {
                throw ImportError.malformed(.entry(kind: "zip entry", name: name), problem: "sizes disagree")
            }
            entries[name] = entry
            cursor += 46 + nameLength + extra + comment
        }
    }

    /// The bytes of a stored member, CRC-checked; nil when the archive has no such member.
    package func member(_ name: String) throws -> Data? {
        guard let entry = entries[name] else { return nil }
        guard entry.method == 0 else {
            let method = entry.method == 8 ? "8, deflate" : "\(entry.method)"
            throw ImportError.unsupported(
                """
                zip entry '\(name)' is compressed (method \(method)); DenseKit reads stored members, as torch.save \
                and Keras write them
                """)
        }
        let header = entry.localHeader
        guard header + 30 <= data.count, u32(header) == 0x0403_4B50 else {
            throw ImportError.malformed(.entry(kind: "zip entry", name: name), problem: "bad local header")
        }
        let start = header + 30 + Int(u16(header + 26)) + Int(u16(header + 28))
        guard start + entry.size <= data.count else {
            throw ImportError.malformed(
                .entry(kind: "zip entry", name: name), problem: "runs past the end of the archive (truncated?)")
        }
        let bytes = data.subdata(in: (data.startIndex + start)..<(data.startIndex + start + entry.size))
        guard CRC32.checksum(bytes) == entry.crc else {
            throw ImportError.malformed(.entry(kind: "zip entry", name: name), problem: "CRC mismatch (corrupt)")
        }
        return bytes
    }

    private func u16(_ at: Int) -> UInt16 {
        UInt16(data[data.startIndex + at]) | UInt16(data[data.startIndex + at + 1]) << 8
    }
    private func u32(_ at: Int) -> UInt32 { UInt32(u16(at)) | UInt32(u16(at + 2)) << 16 }
}
