/// The integer GEMM of quantised convolutions and linear layers: C = A * B in int32, with A M x K and B
/// K x N of codes less their zero points (at most 255 in magnitude for 8-bit types, so no product or sum of a
/// DenseNet's K, up to 9 x 2048, leaves int32). Exact: every order of summation gives the same result.
///
/// Row-major throughout; each row of C accumulates K rows of B scaled by one A value, which the compiler
/// vectorises over N. A plain loop kept for the first integer executor: the VNNI kernel (`vpdpbusd`) that
/// would make int8 faster than float is not written yet.
public enum IntegerGEMM {
    /// C (M x N, row stride `n`) = A (M x K) * B (K x N), all row-major.
    public static func multiply(
        _ a: UnsafeBufferPointer<Int32>, _ b: UnsafeBufferPointer<Int32>, into c: UnsafeMutableBufferPointer<Int32>,
        m: Int, n: Int, k: Int
    ) {
        guard let aBase = a.baseAddress, let bBase = b.baseAddress, let cBase = c.baseAddress else { return }
        for i in 0..<m {
            let row = cBase + i * n
            row.update(repeating: 0, count: n)
            for p in 0..<k {
                let factor = aBase[i * k + p]
                if factor == 0 { continue }
                let source = bBase + p * n
                for j in 0..<n { row[j] &+= factor &* source[j] }
            }
        }
    }

    /// The columns of a convolution's B: for each input channel and kernel tap (K rows: channel-major, then
    /// kernel row, kernel column) the input value each output position reads, 0 where it reads padding
    /// (`input` holds codes less their zero point, so 0 is the padding's real value 0).
    public static func im2col(
        _ input: [Int32], channels: Int, height: Int, width: Int, kernel: Int, stride: Int, pads: [Int]
    ) -> (columns: [Int32], height: Int, width: Int) {
        let oh = (height + pads[0] + pads[2] - kernel) / stride + 1
        let ow = (width + pads[1] + pads[3] - kernel) / stride + 1
        var columns = [Int32](repeating: 0, count: channels * kernel * kernel * oh * ow)
        columns.withUnsafeMutableBufferPointer { out in
            input.withUnsafeBufferPointer { source in
                for c in 0..<channels {
                    for ky in 0..<kernel {
                        for kx in 0..<kernel {
                            let row = ((c * kernel + ky) * kernel + kx) * oh * ow
                            for oy in 0..<oh {
                                let iy = oy * stride - pads[0] + ky
                                if iy < 0 || iy >= height { continue }
                                for ox in 0..<ow {
                                    let ix = ox * stride - pads[1] + kx
                                    if ix < 0 || ix >= width { continue }
                                    out[row + oy * ow + ox] = source[(c * height + iy) * width + ix]
                                }
                            }
                        }
                    }
                }
            }
        }
        return (columns, oh, ow)
    }
}

extension Reference {
    /// C = A * B in int32, the textbook triple loop: the integer GEMM's ground truth.
    public static func integerGEMM(_ a: [Int32], _ b: [Int32], m: Int, n: Int, k: Int) -> [Int32] {
        var c = [Int32](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum: Int32 = 0
                for p in 0..<k { sum &+= a[i * k + p] &* b[p * n + j] }
                c[i * n + j] = sum
            }
        }
        return c
    }
}
