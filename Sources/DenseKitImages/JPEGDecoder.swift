import CTurboJPEG
import Foundation

/// The one place that touches libjpeg-turbo (its TurboJPEG API): decodes baseline, progressive,
/// grayscale and CMYK JPEGs to RGB as PIL does. PIL decodes with libjpeg(-turbo) too, with the same
/// settings as TurboJPEG's defaults (the accurate integer DCT, fancy upsampling), so the pixels agree.
package enum JPEGDecoder {
    /// The size the header claims, checked against `maximumPixels` before anything is decoded.
    package static func decode(_ data: Data, maximumPixels: Int) throws -> RGBImage {
        guard let handle = tjInitDecompress() else {
            throw ImageError.malformed(format: "JPEG", problem: "cannot start the JPEG decoder")
        }
        defer { tjDestroy(handle) }
        return try data.withUnsafeBytes { raw -> RGBImage in
            let bytes = raw.bindMemory(to: UInt8.self).baseAddress
            var width: Int32 = 0
            var height: Int32 = 0
            var subsampling: Int32 = 0
            var colorspace: Int32 = 0
            guard tjDecompressHeader3(handle, bytes, UInt(raw.count), &width, &height, &subsampling, &colorspace) == 0
            else {
                throw ImageError.malformed(format: "JPEG", problem: "not a readable JPEG (\(message(handle)))")
            }
            let (imageWidth, imageHeight) = (Int(width), Int(height))
            try ImageDecoder.checkSize(imageWidth, imageHeight, maximumPixels)
            let cmyk = colorspace == Int32(TJCS_CMYK.rawValue) || colorspace == Int32(TJCS_YCCK.rawValue)
            let gray = colorspace == Int32(TJCS_GRAY.rawValue)
            let format = cmyk ? TJPF_CMYK : gray ? TJPF_GRAY : TJPF_RGB
            let channels = cmyk ? 4 : gray ? 1 : 3
            var out = [UInt8](repeating: 0, count: imageWidth * imageHeight * channels)
            // A warning (a truncated file, corrupt data libjpeg skipped) fails too, as PIL refuses such files.
            guard tjDecompress2(handle, bytes, UInt(raw.count), &out, width, 0, height, Int32(format.rawValue), 0) == 0
            else {
                throw ImageError.malformed(
                    format: "JPEG", problem: "truncated or corrupt JPEG data (\(message(handle)))")
            }
            if gray { return RGBImage(width: imageWidth, height: imageHeight, pixels: out.flatMap { [$0, $0, $0] }) }
            if cmyk {
                return RGBImage(
                    width: imageWidth, height: imageHeight,
                    pixels: PILConversions.cmykToRGB(out, inverted: JPEGMarkers.hasAdobe(raw)))
            }
            return RGBImage(width: imageWidth, height: imageHeight, pixels: out)
        }
    }

    private static func message(_ handle: tjhandle) -> String {
        tjGetErrorStr2(handle).map { String(cString: $0) } ?? "unknown error"
    }
}
