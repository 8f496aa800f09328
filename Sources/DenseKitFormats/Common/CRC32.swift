import Foundation

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as zip and PNG use.
package enum CRC32 {
    package static let table: [UInt32] = (0..<256).map { byte -> UInt32 in
        var remainder = UInt32(byte)
        for _ in 0..<8 { remainder = remainder & 1 != 0 ? 0xEDB8_8320 ^ (remainder >> 1) : remainder >> 1 }
        return remainder
    }

    package static func checksum(_ data: Data) -> UInt32 {
        data.withUnsafeBytes { checksum($0) }
    }

    package static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes { crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }
}
