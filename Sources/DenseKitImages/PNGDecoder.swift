import CSPNG
import Foundation

/// The one place that touches libspng: decodes PNGs of every color type and bit depth to RGB as
/// PIL's `convert("RGB")` does (gray replicated, palettes expanded, alpha and tRNS dropped, 16-bit
/// samples reduced to their high byte), after `PNGChunks` has judged the chunks as Pillow does.
package enum PNGDecoder {
    package static func decode(_ data: Data, maximumPixels: Int) throws -> RGBImage {
        guard let ctx = spng_ctx_new(0) else {
            throw ImageError.malformed(format: "PNG", problem: "cannot start the PNG decoder")
        }
        defer { spng_ctx_free(ctx) }
        // Ancillary chunks (text, ICC profiles) are capped too: a file cannot make the decoder allocate much.
        spng_set_chunk_limits(ctx, 1 << 24, 1 << 26)
        // Pillow's judgement of the chunks first; libspng decodes only IHDR, PLTE, IDAT and IEND.
        let data = try PNGChunks.normalized(data)
        return try data.withUnsafeBytes { raw -> RGBImage in
            try check(spng_set_png_buffer(ctx, raw.baseAddress, raw.count), "not a readable PNG")
            var header = spng_ihdr()
            try check(spng_get_ihdr(ctx, &header), "not a readable PNG")
            let (width, height) = (Int(header.width), Int(header.height))
            try ImageDecoder.checkSize(width, height, maximumPixels)
            let sixteen = header.bit_depth == 16
            let format = Int32(sixteen ? SPNG_FMT_RGBA16.rawValue : SPNG_FMT_RGBA8.rawValue)
            var size = 0
            try check(spng_decoded_image_size(ctx, format, &size), "cannot size the PNG")
            guard size == width * height * (sixteen ? 8 : 4) else {
                throw ImageError.malformed(format: "PNG", problem: "PNG decoder size \(size) for \(width)x\(height)")
            }
            var rgba = [UInt8](repeating: 0, count: size)
            try check(spng_decode_image(ctx, &rgba, size, format, 0), "truncated or corrupt PNG data")
            var out = [UInt8](repeating: 0, count: width * height * 3)
            if sixteen {
                // spng writes 16-bit samples in host byte order: the high byte is the second on x86 and ARM.
                for p in 0..<(width * height) { for c in 0..<3 { out[p * 3 + c] = rgba[p * 8 + c * 2 + 1] } }
            } else {
                for p in 0..<(width * height) { for c in 0..<3 { out[p * 3 + c] = rgba[p * 4 + c] } }
            }
            return RGBImage(width: width, height: height, pixels: out)
        }
    }

    private static func check(_ status: Int32, _ what: String) throws {
        guard status != 0 else { return }
        throw ImageError.malformed(format: "PNG", problem: "\(what) (\(String(cString: spng_strerror(status))))")
    }
}
