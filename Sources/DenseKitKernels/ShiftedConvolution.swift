/// A stride-1 "same" convolution (odd kernel k, padding b = k / 2) on maps in `PlaneLayout` with
/// border b.
///
/// Output pixel q reads tap t's input at q + shift(t), a constant offset in the plane. Rather than
/// reading the input once per tap (B rows shifted per tap, as `PhaseConvolution` does), every tap's
/// weights are multiplied with the input's image read once, and each tap's tile is added into the
/// output at q = p - shift(t): one GEMM with M = taps x outputs, each of whose B panels (packed, or
/// read in place from a panel-major input) serves all of them (9x the reuse for a 3x3 with 32 outputs). Rows have no
/// border columns: a tap
/// that reaches across the left or right edge would add the neighbouring row's pixels, so its tiles
/// skip the output columns where that happens (they read zero padding there). Reaching above or below
/// the image lands in the plane's vertical border. Exact in real arithmetic; the sums are in another
/// order than `PhaseConvolution`'s.
///
/// The weights' rows are ordered (block of 8 outputs, tap, row; `PackedMatrix.ConvolutionRows.outputTaps`):
/// the tiles of one block of outputs are consecutive, so threads that split A's rows by blocks never
/// write the same output.
public enum ShiftedConvolution {
    /// `input` holds the image's K = `weights.cols` channels as the GEMM's B, row k channel k and
    /// column j pixel j (`GEMM.segments` of planes in `layout` from their interior, or a panel-major
    /// copy). Output planes [0, outChannels) at `output`, in `layout`, are overwritten: the bias (or
    /// zero) everywhere, then the convolution added; their borders end up holding partial sums, which
    /// nothing may read as image values.
    public static func run(
        _ weights: PackedMatrix, outChannels: Int, kernel: Int,
        _ input: [GEMM.Segment], layout: PlaneLayout,
        into output: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, threads: Int
    ) {
        let border = kernel / 2
        let taps = kernel * kernel
        let rowWidth = layout.width
        let plane = layout.plane
        precondition(
            layout.border == border, "ShiftedConvolution: border \(layout.border) for a \(kernel)x\(kernel) kernel")
        // GEMM column j is input pixel j of the image; tap (dy, dx) adds it into output pixel
        // j - dy * rowWidth - dx, whose column x = (j - dx) mod rowWidth must have x + dx inside the row.
        var skips: [GEMM.ColumnSkip] = []
        for dx in -border...border where dx != 0 {
            skips.append(
                GEMM.ColumnSkip(
                    phase: -dx, period: rowWidth,
                    skipped: dx < 0 ? 0..<min(rowWidth, -dx) : max(0, rowWidth - dx)..<rowWidth))
        }
        var targets: [GEMM.TileTarget] = []
        for block in 0..<(outChannels + 7) / 8 {
            for t in 0..<taps {
                let dy = t / kernel - border
                let dx = t % kernel - border
                targets.append(
                    GEMM.TileTarget(
                        offset: block * 8 * plane - (dy * rowWidth + dx), rows: min(8, outChannels - block * 8),
                        skip: dx == 0 ? nil : dx + border - (dx > 0 ? 1 : 0)))
            }
        }
        // Each thread sets its own output planes (those of its blocks of A's rows) to the bias first.
        GEMM.accumulate(
            weights, input,
            n: layout.height * rowWidth, output + layout.interior, ldc: plane, targets: targets, skips: skips,
            rowGranule: taps * 8, threads: threads
        ) { rows in
            for o in (rows.lowerBound / taps)..<min(outChannels, rows.upperBound / taps) {
                (output + o * plane).update(repeating: bias?[o] ?? 0, count: plane)
            }
        }
    }
}
