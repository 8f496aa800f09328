/// Pixel conversions done as Pillow does them (libImaging/Convert.c), so DenseKit's RGB is PIL's.
package enum PILConversions {
    /// PIL's `cmyk2rgb`: with nk = 255 - K, each of R, G, B = nk - C * nk / 255 (rounded as
    /// MULDIV255). `inverted`: the JPEG has Adobe's marker and stores CMYK inverted (Photoshop's
    /// convention, and what PIL writes), which PIL reads as `CMYK;I`.
    package static func cmykToRGB(_ cmyk: [UInt8], inverted: Bool) -> [UInt8] {
        let n = cmyk.count / 4
        var out = [UInt8](repeating: 0, count: n * 3)
        for p in 0..<n {
            func value(_ c: Int) -> Int {
                let v = Int(cmyk[p * 4 + c])
                return inverted ? 255 - v : v
            }
            let nk = 255 - value(3)
            for c in 0..<3 {
                let t = value(c) * nk + 128
                out[p * 3 + c] = UInt8(clamping: nk - (((t >> 8) + t) >> 8))
            }
        }
        return out
    }
}

/// The JPEG markers before the image data, read only to learn what TurboJPEG does not report.
package enum JPEGMarkers {
    /// Whether an APP14 "Adobe" segment precedes the scan (the file then stores CMYK inverted).
    package static func hasAdobe(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 2
        while i + 4 <= bytes.count {
            guard bytes[i] == 0xFF else { return false }
            let marker = bytes[i + 1]
            if marker == 0xFF {
                i += 1
                continue
            }
            if marker == 0xDA || marker == 0xD9 { return false }  // start of scan, end of image
            let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            guard length >= 2 else { return false }
            if marker == 0xEE, i + 9 <= bytes.count, Array(bytes[(i + 4)..<(i + 9)]) == Array("Adobe".utf8) {
                return true
            }
            i += 2 + length
        }
        return false
    }
}
