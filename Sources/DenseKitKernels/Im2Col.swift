/// Unfolds a CHW image into the K x N operand of a convolution GEMM:
/// row (c * kernel + ky) * kernel + kx, column oy * outW + ox, zero outside the image.
public enum Im2Col {
    /// `rows` limits the work to those rows of the result (for splitting it across threads).
    public static func unfold(_ src: UnsafePointer<Float>, channels: Int, height: Int, width: Int,
                              kernel: Int, stride: Int, padTop: Int, padLeft: Int, outHeight: Int, outWidth: Int,
                              into dst: UnsafeMutablePointer<Float>, rows: Range<Int>? = nil) {
        let n = outHeight * outWidth
        let rows = rows ?? 0..<(channels * kernel * kernel)
        for r in rows {
            let c = r / (kernel * kernel), ky = r / kernel % kernel, kx = r % kernel
            let row = dst + r * n
            let plane = src + c * height * width
            do {
                do {
                    for oy in 0..<outHeight {
                        let out = row + oy * outWidth
                        let iy = oy * stride - padTop + ky
                        if iy < 0 || iy >= height {
                            out.update(repeating: 0, count: outWidth)
                            continue
                        }
                        let line = plane + iy * width
                        if stride == 1 {
                            // ix = ox - padLeft + kx: contiguous between the borders.
                            let shift = kx - padLeft
                            let lo = max(0, -shift), hi = min(outWidth, width - shift)
                            if lo > 0 { out.update(repeating: 0, count: min(lo, outWidth)) }
                            if hi > lo { (out + lo).update(from: line + lo + shift, count: hi - lo) }
                            if hi < outWidth { (out + max(hi, 0)).update(repeating: 0, count: outWidth - max(hi, 0)) }
                        } else {
                            for ox in 0..<outWidth {
                                let ix = ox * stride - padLeft + kx
                                out[ox] = ix >= 0 && ix < width ? line[ix] : 0
                            }
                        }
                    }
                }
            }
        }
    }
}
