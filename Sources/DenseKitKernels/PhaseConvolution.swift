/// Any convolution (kernel k, stride s, pads) computed as one GEMM read straight from the input's
/// zero-padded phase planes, with no im2col buffer.
///
/// The padded input is split into s x s phases: phase (a, b) holds padded rows s*i + a and columns
/// s*j + b. Output (y, x) reads tap (ky, kx) at padded (s*y + ky, s*x + kx), which is phase
/// (ky % s, kx % s) at (y + ky / s, x + kx / s): for each tap the GEMM's B rows are the phase planes
/// themselves, shifted by a constant. With planes `phaseWidth` wide, output position
/// n = y * phaseWidth + x; the grid's last `phaseWidth - outWidth` columns of each row are discarded
/// by `compact`. For stride 1 this is simply the zero-padded image. K is ordered tap-major
/// (tap, channel), so the weights are packed in that order (`PackedMatrix.ConvolutionRows.outputs`).
public struct PhaseConvolution: Sendable {
    public let channels: Int, height: Int, width: Int
    public let kernel: Int, stride: Int, padTop: Int, padLeft: Int
    public let outHeight: Int, outWidth: Int
    /// Size of each phase plane: the output plus the taps' reach (k - 1) / s.
    public let phaseHeight: Int, phaseWidth: Int

    /// `pads` are [top, left, bottom, right]; the output size must be positive.
    public init(channels: Int, height: Int, width: Int, kernel: Int, stride: Int, pads: [Int]) {
        self.channels = channels
        self.height = height
        self.width = width
        self.kernel = kernel
        self.stride = stride
        padTop = pads[0]
        padLeft = pads[1]
        outHeight = (height + pads[0] + pads[2] - kernel) / stride + 1
        outWidth = (width + pads[1] + pads[3] - kernel) / stride + 1
        phaseHeight = outHeight + (kernel - 1) / stride
        phaseWidth = outWidth + (kernel - 1) / stride
    }

    public var plane: Int { phaseHeight * phaseWidth }
    /// Phases a tap can read (s x s, or fewer when the kernel is smaller than the stride).
    var phases: Int { min(stride, kernel) * min(stride, kernel) }
    func phase(_ rowPhase: Int, _ columnPhase: Int) -> Int { rowPhase * min(stride, kernel) + columnPhase }

    /// Floats the phase planes need, plus slack so the garbage columns of the last row stay inside.
    public var inputCount: Int { phases * channels * plane + (kernel - 1) / stride }

    /// Columns of the GEMM (the output grid): outHeight x phaseWidth.
    public var gridCount: Int { outHeight * phaseWidth }

    /// Writes the phase planes of input channels `range` (CHW at `src`), borders as zeros, every time.
    /// The slack after the last plane is zeroed by `zeroSlack`.
    public func split(_ src: UnsafePointer<Float>, channels range: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        let used = min(stride, kernel)
        for a in 0..<used {
            for b in 0..<used {
                for c in range {
                    let out = dst + (phase(a, b) * channels + c) * plane
                    let input = src + c * height * width
                    // Phase column j reads input column stride * j + b - padLeft: [j0, j1) are inside.
                    let j0 = min(phaseWidth, max(0, (padLeft - b + stride - 1) / stride))
                    let j1 = max(j0, min(phaseWidth, (width + padLeft - b + stride - 1) / stride))
                    for i in 0..<phaseHeight {
                        let row = out + i * phaseWidth
                        let inputRow = stride * i + a - padTop
                        guard inputRow >= 0 && inputRow < height else {
                            row.update(repeating: 0, count: phaseWidth)
                            continue
                        }
                        row.update(repeating: 0, count: j0)
                        let line = input + inputRow * width + b - padLeft
                        if stride == 1 {
                            (row + j0).update(from: line + j0, count: j1 - j0)
                        } else {
                            for j in j0..<j1 { row[j] = line[stride * j] }
                        }
                        (row + j1).update(repeating: 0, count: phaseWidth - j1)
                    }
                }
            }
        }
    }

    /// Zeroes the slack after the last phase plane.
    public func zeroSlack(_ dst: UnsafeMutablePointer<Float>) {
        (dst + phases * channels * plane).update(repeating: 0, count: (kernel - 1) / stride)
    }

    /// The GEMM's B segments over the phase planes at `planes`, in tap-major K order.
    public func segments(_ planes: UnsafePointer<Float>) -> [GEMM.Segment] {
        var segments: [GEMM.Segment] = []
        for ky in 0..<kernel {
            for kx in 0..<kernel {
                let tap = ky * kernel + kx
                let base =
                    planes + phase(ky % stride, kx % stride) * channels * plane
                    + (ky / stride) * phaseWidth + kx / stride
                var c0 = 0
                while c0 < channels {
                    let count = min(GEMM.kc, channels - c0)
                    segments.append(
                        GEMM.Segment(k0: tap * channels + c0, count: count, base: base + c0 * plane, stride: plane))
                    c0 += count
                }
            }
        }
        return segments
    }

    /// Drops the extra columns of each grid row: outHeight x phaseWidth -> outHeight x outWidth planes,
    /// for output channels `range` (grid and output both start at channel 0).
    public func compact(_ grid: UnsafePointer<Float>, channels range: Range<Int>, into dst: UnsafeMutablePointer<Float>)
    {
        let from = Elementwise.Strides(row: phaseWidth, plane: gridCount)
        let to = Elementwise.Strides(row: outWidth, plane: outHeight * outWidth)
        Elementwise.copy(
            grid + range.lowerBound * from.plane, from: from, dst + range.lowerBound * to.plane, to: to,
            channels: range.count, height: outHeight, width: outWidth)
    }
}
