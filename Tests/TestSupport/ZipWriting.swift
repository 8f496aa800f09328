import Foundation

/// A stored (uncompressed) zip archive, as torch.save writes one: for hostile checkpoints made in the
/// tests around a pickle of their own.
public enum ZipWriting {
    public static func stored(_ members: [(name: String, data: Data)]) -> Data {
        var out = Data()
        var central = Data()
        func le16(_ value: Int) -> Data { withUnsafeBytes(of: UInt16(value).littleEndian) { Data($0) } }
        func le32(_ value: UInt32) -> Data { withUnsafeBytes(of: value.littleEndian) { Data($0) } }
        for (name, data) in members {
            let crc = crc32(data)
            let offset = out.count
            let nameBytes = Data(name.utf8)
            let size = le32(UInt32(data.count))
            var local = le32(0x0403_4B50) + le16(20) + le16(0)
            local += le16(0) + le16(0) + le16(0)
            local += le32(crc) + size + size + le16(nameBytes.count) + le16(0)
            out += local + nameBytes + data
            var entry = le32(0x0201_4B50) + le16(20) + le16(20) + le16(0)
            entry += le16(0) + le16(0) + le16(0)
            entry += le32(crc) + size + size + le16(nameBytes.count)
            entry += le16(0) + le16(0) + le16(0) + le16(0)
            entry += le32(0) + le32(UInt32(offset))
            central += entry + nameBytes
        }
        let start = out.count
        out += central
        out += le32(0x0605_4B50) + le16(0) + le16(0)
        out += le16(members.count) + le16(members.count)
        out += le32(UInt32(central.count)) + le32(UInt32(start)) + le16(0)
        return out
    }

    static func crc32(_ data: Data) -> UInt32 {
        var remainder: UInt32 = 0xFFFF_FFFF
        for b in data {
            remainder ^= UInt32(b)
            for _ in 0..<8 { remainder = remainder & 1 != 0 ? 0xEDB8_8320 ^ (remainder >> 1) : remainder >> 1 }
        }
        return remainder ^ 0xFFFF_FFFF
    }
}
