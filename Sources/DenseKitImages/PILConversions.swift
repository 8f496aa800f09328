/// Pixel conversions done as Pillow does them (libImaging/Convert.c), so DenseKit's RGB is PIL's.
package enum PILConversions {
    /// PIL's `cmyk2rgb`: with nk = 255 - K, each of R, G, B = nk - C * nk / 255 (rounded as
    /// MULDIV255). `inverted`: the JPEG has Adobe's marker and stores CMYK inverted (Photoshop's
    /// convention, and what PIL writes), which PIL reads as `CMYK;I`.
    package static func cmykToRGB(_ cmyk: [UInt8], inverted: Bool) -> [UInt8] {
        let pixels = cmyk.count / 4
        var out = [UInt8](repeating: 0, count: pixels * 3)
        for p in 0..<pixels {
            func value(_ channel: Int) -> Int {
                let stored = Int(cmyk[p * 4 + channel])
                return inverted ? 255 - stored : stored
            }
            let nk = 255 - value(3)
            for channel in 0..<3 {
                let scaled = value(channel) * nk + 128
                out[p * 3 + channel] = UInt8(clamping: nk - (((scaled >> 8) + scaled) >> 8))
            }
        }
        return out
    }
}

/// The JPEG markers before the image data, read only to learn what TurboJPEG does not report.
package enum JPEGMarkers {
    /// Whether an APP14 "Adobe" segment precedes the scan (the file then stores CMYK inverted).
    package static func hasAdobe(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var position = 2
        while position + 4 <= bytes.count {
            guard bytes[position] == 0xFF else { return false }
            let marker = bytes[position + 1]
            if marker == 0xFF {
                position += 1
                continue
            }
            if marker == 0xDA || marker == 0xD9 { return false }  // start of scan, end of image
            let length = Int(bytes[position + 2]) << 8 | Int(bytes[position + 3])
            guard length >= 2 else { return false }
            if marker == 0xEE, position + 9 <= bytes.count,
                Array(bytes[(position + 4)..<(position + 9)]) == Array("Adobe".utf8)
            {
                return true
            }
            position += 2 + length
        }
        return false
    }
}
