/// A stride-1 "same" convolution (odd kernel k, padding b = k / 2) on bordered planes: each channel
/// stored as (h + 2b) x (w + 2b) floats, the image in the middle; the input's border cells are read
/// as zero padding whatever they hold.
///
/// Output pixel q reads tap t's input at q + shift(t), a constant offset in the plane. Rather than
/// reading the input once per tap (B rows shifted per tap, as `PhaseConvolution` does), every tap's
/// weights are multiplied with the input read once, and each tap's tile is added into the output at
/// q = p - shift(t): one GEMM with M = taps x outputs, whose B panel is packed once and serves all
/// of them (9x the reuse for a 3x3 with 32 outputs), and whose input is read in aligned rows.
/// Exact in real arithmetic; the sums are in another order than `PhaseConvolution`'s.
///
/// The weights' rows are ordered (block of 8 outputs, tap, row): the tiles of one block of outputs
/// are consecutive, so threads that split A's rows by blocks never write the same output.
public enum ShiftedConvolution {
    /// OIHW weights packed as the GEMM's A: rows (output block, tap, row within the block), padded
    /// with zero rows to whole blocks of 8; K = inChannels.
    public static func pack(_ oihw: [Float], outChannels: Int, inChannels: Int, kernel: Int) -> PackedMatrix {
        let taps = kernel * kernel, blocks = (outChannels + 7) / 8
        var rows = [Float](repeating: 0, count: blocks * taps * 8 * inChannels)
        for o in 0..<outChannels {
            for t in 0..<taps {
                let row = ((o / 8) * taps + t) * 8 + o % 8
                for i in 0..<inChannels { rows[row * inChannels + i] = oihw[(o * inChannels + i) * taps + t] }
            }
        }
        return PackedMatrix(rows: blocks * taps * 8, cols: inChannels, values: rows)
    }

    /// Output planes [0, outChannels) at `output` (same geometry as the input's) are overwritten:
    /// the bias (or zero) everywhere, then the convolution added into the interiors. Their borders end
    /// up holding partial sums, which nothing may read as image values.
    public static func run(_ weights: PackedMatrix, outChannels: Int, kernel: Int,
                           _ input: UnsafePointer<Float>, height: Int, width: Int,
                           into output: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, threads: Int) {
        let b = kernel / 2, taps = kernel * kernel
        let rowStride = width + 2 * b, plane = (height + 2 * b) * rowStride, interior = b * rowStride + b
        WorkerPool.shared(threads: threads).parallelFor(outChannels) { r in
            for o in r { (output + o * plane).update(repeating: bias?[o] ?? 0, count: plane) }
        }
        var targets: [GEMM.TileTarget] = []
        for block in 0..<(outChannels + 7) / 8 {
            for t in 0..<taps {
                let shift = (t / kernel - b) * rowStride + (t % kernel - b)
                targets.append(GEMM.TileTarget(offset: block * 8 * plane - shift, rows: min(8, outChannels - block * 8)))
            }
        }
        // B: the input's interior rows, border cells read as zero, but the first row's left border and
        // the last row's right border (left out so that every target stays inside its own planes).
        let borders = GEMM.BorderColumns(origin: interior, rowStride: rowStride, border: b)
        GEMM.accumulate(weights, GEMM.segments(input + interior, ldb: plane, k: weights.cols, borders: borders),
                        n: height * rowStride - 2 * b, output + interior, ldc: plane, targets: targets,
                        rowGranule: taps * 8, threads: threads)
    }
}
