import DenseKitFormats
import Foundation

/// Judges a PNG's chunks as Pillow's `PngImagePlugin` does (torchvision's pipeline opens images with
/// Pillow), and hands libspng only what the RGB image is made of.
///
/// Pillow, before the first IDAT, reads every chunk with its CRC checked: a chunk type that is not four
/// word characters ([A-Za-z0-9_]), a bad CRC, an iCCP or zTXt chunk whose compression method is not 0,
/// or a file that ends inside a chunk is refused; an unknown chunk, critical or not, is skipped. It then
/// reads the consecutive IDAT chunks without checking their CRCs, and ignores what follows them.
/// libspng is stricter in places (an unknown critical chunk, a bad IDAT CRC) and looser in others, so
/// the decoder gets a PNG rebuilt from IHDR, PLTE, the IDAT run and IEND: the ancillary chunks do not
/// change the RGB values Pillow's `convert("RGB")` gives (no gamma, no transparency), and libspng
/// never sees a hostile one.
package enum PNGChunks {
    package static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// The PNG to decode, or an error naming the chunk Pillow would refuse.
    package static func normalized(_ data: Data) throws -> Data {
        try data.withUnsafeBytes { raw -> Data in
            guard raw.count >= 8, raw.prefix(8).elementsEqual(signature) else {
                throw ImageError.malformed(format: "PNG", problem: "not a PNG")
            }
            var kept = Data(signature)
            var at = 8
            var sawImageData = false
            while true {
                guard at + 8 <= raw.count else {
                    if sawImageData { break }
                    throw ImageError.malformed(format: "PNG", problem: "truncated PNG (it ends before its image data)")
                }
                let length = Int(UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
                let type = Array(raw[(at + 4)..<(at + 8)])
                let name = String(decoding: type, as: UTF8.self)
                let isImageData = type == Array("IDAT".utf8)
                if sawImageData {
                    // After the IDAT run, Pillow reads nothing more of the image.
                    guard isImageData else { break }
                } else {
                    guard type.allSatisfy(isWordCharacter) else {
                        let bytes = type.map { String(format: "%02X", $0) }.joined(separator: " ")
                        throw ImageError.badChunk(
                            "type \(bytes)", problem: "is not four letters, digits or underscores")
                    }
                }
                let dataEnd = at + 8 + length
                if isImageData {
                    // An IDAT cut short keeps what is there: the decoder then says the data is truncated.
                    let end = min(dataEnd, raw.count)
                    append(chunk: type, UnsafeRawBufferPointer(rebasing: raw[(at + 8)..<end]), to: &kept)
                    sawImageData = true
                    at = dataEnd + 4
                    continue
                }
                guard dataEnd + 4 <= raw.count else {
                    throw ImageError.malformed(format: "PNG", problem: "truncated PNG (inside chunk '\(name)')")
                }
                let body = UnsafeRawBufferPointer(rebasing: raw[(at + 8)..<dataEnd])
                let stored = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: dataEnd, as: UInt32.self))
                guard CRC32.checksum(UnsafeRawBufferPointer(rebasing: raw[(at + 4)..<dataEnd])) == stored else {
                    throw ImageError.badChunk("'\(name)'", problem: "has a bad CRC")
                }
                if name == "iCCP" || name == "zTXt" {
                    // keyword, NUL, compression method (Pillow accepts 0 only)
                    if let nul = body.firstIndex(of: 0), nul + 1 < body.count, body[nul + 1] != 0 {
                        throw ImageError.badChunk("'\(name)'", problem: "has compression method \(body[nul + 1])")
                    }
                }
                if name == "IHDR" || name == "PLTE" { append(chunk: type, body, to: &kept) }
                if name == "IEND" { break }
                at = dataEnd + 4
            }
            guard sawImageData else {
                throw ImageError.malformed(format: "PNG", problem: "truncated PNG (no image data)")
            }
            append(chunk: Array("IEND".utf8), UnsafeRawBufferPointer(start: nil, count: 0), to: &kept)
            return kept
        }
    }

    /// Python's `\w` on bytes: letters, digits and the underscore.
    private static func isWordCharacter(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x5F
    }

    /// Appends a chunk with a correct CRC.
    private static func append(chunk type: [UInt8], _ body: UnsafeRawBufferPointer, to out: inout Data) {
        withUnsafeBytes(of: UInt32(body.count).bigEndian) { out.append(contentsOf: $0) }
        var checked = Data(type)
        checked.append(contentsOf: body)
        out.append(checked)
        withUnsafeBytes(of: CRC32.checksum(checked).bigEndian) { out.append(contentsOf: $0) }
    }
}
