/// The column GEMM of the integer executor's float layers: a convolution as `im2col` and C = A * B (`multiply`),
/// row-major throughout. Each row of C accumulates K rows of B scaled by one A value, which the compiler
/// vectorises over N.
///
/// It runs the float layers of a partly quantised model (`diff --sensitivity` runs the float model with one layer at
/// a time quantised): 13 times faster than the direct reference convolution on DenseNet-121 (docs/performance.md),
/// far slower than the SIMD executor's GEMM, whose plan it does not need. Integer layers run on `IntegerGEMM`.
public enum ColumnGEMM {
    /// C (M x N, row stride `n`) = A (M x K) * B (K x N), all row-major.
    @_specialize(where T == Float)
    public static func multiply<T: Numeric>(
        _ a: UnsafeBufferPointer<T>, _ b: UnsafeBufferPointer<T>, into c: UnsafeMutableBufferPointer<T>,
        m: Int, n: Int, k: Int
    ) {
        guard let aBase = a.baseAddress, let bBase = b.baseAddress, let cBase = c.baseAddress else { return }
        for i in 0..<m {
            let row = cBase + i * n
            row.update(repeating: .zero, count: n)
            for p in 0..<k {
                let factor = aBase[i * k + p]
                if factor == .zero { continue }
                let source = bBase + p * n
                for j in 0..<n { row[j] += factor * source[j] }
            }
        }
    }

    /// The columns of a convolution's B: for each input channel and kernel tap (K rows: channel-major, then
    /// kernel row, kernel column) the input value each output position reads, 0 where it reads padding.
    @_specialize(where T == Float)
    public static func im2col<T: Numeric>(
        _ input: [T], channels: Int, height: Int, width: Int, kernel: Int, stride: Int, pads: [Int]
    ) -> (columns: [T], height: Int, width: Int) {
        let oh = (height + pads[0] + pads[2] - kernel) / stride + 1
        let ow = (width + pads[1] + pads[3] - kernel) / stride + 1
        var columns = [T](repeating: .zero, count: channels * kernel * kernel * oh * ow)
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
