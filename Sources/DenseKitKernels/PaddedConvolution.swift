/// A stride-1 convolution with symmetric zero padding p (3x3 pad 1 in every dense layer) computed
/// as one GEMM straight from a zero-padded copy of the input, with no im2col buffer.
///
/// With the input padded to planes of (h + 2p) x (w + 2p) = P values, output position
/// n = y * (w + 2p) + x reads input tap (ky, kx) of channel c at c * P + n + ky * (w + 2p) + kx:
/// for each tap the B rows are the padded planes themselves, shifted. K is ordered tap-major
/// (tap, channel), so the weights are packed in that order; the output grid is h x (w + 2p), whose
/// last 2p columns of each row are discarded by `compact`.
public enum PaddedConvolution {
    /// Floats the padded input needs: the planes plus 2p so the last tap's reads stay inside.
    public static func paddedCount(channels: Int, height: Int, width: Int, pad: Int) -> Int {
        channels * (height + 2 * pad) * (width + 2 * pad) + 2 * pad
    }

    /// Output grid size (columns of the GEMM): h x (w + 2p).
    public static func gridCount(height: Int, width: Int, pad: Int) -> Int { height * (width + 2 * pad) }

    /// OIHW weights reordered to O x (kernel * kernel * I), tap-major, for `PackedMatrix`.
    public static func tapMajor(_ w: [Float], outChannels: Int, inChannels: Int, kernel: Int) -> [Float] {
        var out = [Float](repeating: 0, count: w.count)
        let taps = kernel * kernel
        for o in 0..<outChannels {
            for i in 0..<inChannels {
                for t in 0..<taps { out[(o * taps + t) * inChannels + i] = w[(o * inChannels + i) * taps + t] }
            }
        }
        return out
    }

    /// Copies CHW planes into zero-padded planes (borders written as zeros every time). The 2p values
    /// of slack after the last plane are zeroed by `zeroSlack`.
    public static func pad(_ src: UnsafePointer<Float>, channels: Int, height: Int, width: Int, pad p: Int,
                           into dst: UnsafeMutablePointer<Float>) {
        let pw = width + 2 * p, plane = (height + 2 * p) * pw
        for c in 0..<channels {
            let out = dst + c * plane, input = src + c * height * width
            out.update(repeating: 0, count: p * pw + p)
            for y in 0..<height {
                (out + (y + p) * pw + p).update(from: input + y * width, count: width)
                if y + 1 < height { (out + (y + p) * pw + p + width).update(repeating: 0, count: 2 * p) }
            }
            (out + (height + p) * pw - p).update(repeating: 0, count: p * pw + p)
        }
    }

    /// Zeroes the slack after `channels` padded planes.
    public static func zeroSlack(_ dst: UnsafeMutablePointer<Float>, channels: Int, height: Int, width: Int, pad p: Int) {
        (dst + channels * (height + 2 * p) * (width + 2 * p)).update(repeating: 0, count: 2 * p)
    }

    /// The GEMM's B segments over the padded input, in tap-major K order.
    public static func segments(_ padded: UnsafePointer<Float>, channels: Int, height: Int, width: Int,
                                kernel: Int, pad p: Int) -> [GEMM.Segment] {
        let pw = width + 2 * p, plane = (height + 2 * p) * pw
        var segments: [GEMM.Segment] = []
        for ky in 0..<kernel {
            for kx in 0..<kernel {
                let tap = ky * kernel + kx
                var c0 = 0
                while c0 < channels {
                    let count = min(GEMM.kc, channels - c0)
                    segments.append(GEMM.Segment(k0: tap * channels + c0, count: count,
                                                 base: padded + c0 * plane + ky * pw + kx, stride: plane))
                    c0 += count
                }
            }
        }
        return segments
    }

    /// Drops the 2p extra columns of each output row: h x (w + 2p) grid -> h x w planes.
    public static func compact(_ grid: UnsafePointer<Float>, channels: Int, height: Int, width: Int, pad p: Int,
                               into dst: UnsafeMutablePointer<Float>) {
        let pw = width + 2 * p
        for c in 0..<channels {
            for y in 0..<height {
                (dst + (c * height + y) * width).update(from: grid + (c * height + y) * pw, count: width)
            }
        }
    }
}
