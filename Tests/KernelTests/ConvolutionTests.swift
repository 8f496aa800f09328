import DenseKitKernels
import TestSupport
import Testing

/// im2col + GEMM (the SIMD convolution) against the direct reference convolution.
@Suite struct ConvolutionTests {
    struct Case: Sendable, CustomStringConvertible {
        var c: Int, h: Int, w: Int, o: Int, k: Int, stride: Int, pad: Int
        var description: String { "c\(c) \(h)x\(w) o\(o) k\(k)/\(stride) p\(pad)" }
    }

    static let cases = [
        Case(c: 3, h: 17, w: 23, o: 5, k: 7, stride: 2, pad: 3),
        Case(c: 13, h: 9, w: 11, o: 4, k: 3, stride: 1, pad: 1),
        Case(c: 20, h: 7, w: 7, o: 19, k: 3, stride: 1, pad: 1),
        Case(c: 5, h: 8, w: 6, o: 3, k: 1, stride: 1, pad: 0),
        Case(c: 2, h: 10, w: 9, o: 3, k: 3, stride: 2, pad: 0),
    ]

    @Test(arguments: cases)
    func im2colGEMMMatchesDirectConvolution(_ t: Case) {
        var rng = SeededRandom(UInt64(t.c * 31 + t.h * 7 + t.o))
        let x = rng.floats(t.c * t.h * t.w), weight = rng.floats(t.o * t.c * t.k * t.k), bias = rng.floats(t.o)
        let pads = [t.pad, t.pad, t.pad, t.pad]
        let want = Reference.conv(x, channels: t.c, height: t.h, width: t.w, weight: weight, outChannels: t.o,
                                  kernel: t.k, stride: t.stride, pads: pads, bias: bias)
        let n = want.height * want.width
        var columns = [Float](repeating: .nan, count: t.c * t.k * t.k * n)
        x.withUnsafeBufferPointer { xp in
            columns.withUnsafeMutableBufferPointer { cp in
                Im2Col.unfold(xp.baseAddress!, channels: t.c, height: t.h, width: t.w, kernel: t.k, stride: t.stride,
                              padTop: t.pad, padLeft: t.pad, outHeight: want.height, outWidth: want.width, into: cp.baseAddress!)
            }
        }
        var y = [Float](repeating: 0, count: t.o * n)
        let packed = PackedMatrix(rows: t.o, cols: t.c * t.k * t.k, values: weight)
        columns.withUnsafeBufferPointer { cp in
            bias.withUnsafeBufferPointer { bp in
                y.withUnsafeMutableBufferPointer { GEMM.multiply(packed, cp.baseAddress!, ldb: n, n: n, $0.baseAddress!, ldc: n, bias: bp.baseAddress!) }
            }
        }
        #expect(relativeError(y, want.values) < 1e-5, "\(t)")
    }
}

/// The padded (implicit) convolution against the direct reference convolution.
@Suite struct PaddedConvolutionTests {
    @Test(arguments: [(13, 9, 11, 4, 3), (20, 7, 7, 19, 3), (3, 5, 6, 2, 5), (300, 6, 5, 9, 3), (5, 8, 8, 33, 1)])
    func matchesDirectConvolution(_ t: (c: Int, h: Int, w: Int, o: Int, k: Int)) {
        var rng = SeededRandom(UInt64(t.c * 7 + t.h))
        let p = t.k / 2
        let x = rng.floats(t.c * t.h * t.w), weight = rng.floats(t.o * t.c * t.k * t.k), bias = rng.floats(t.o)
        let want = Reference.conv(x, channels: t.c, height: t.h, width: t.w, weight: weight, outChannels: t.o,
                                  kernel: t.k, stride: 1, pads: [p, p, p, p], bias: bias)
        var padded = [Float](repeating: .nan, count: PaddedConvolution.paddedCount(channels: t.c, height: t.h, width: t.w, pad: p))
        let n = PaddedConvolution.gridCount(height: t.h, width: t.w, pad: p)
        var grid = [Float](repeating: .nan, count: t.o * n)
        var y = [Float](repeating: .nan, count: t.o * t.h * t.w)
        let packed = PackedMatrix(rows: t.o, cols: t.c * t.k * t.k,
                                  values: PaddedConvolution.tapMajor(weight, outChannels: t.o, inChannels: t.c, kernel: t.k))
        x.withUnsafeBufferPointer { xp in
            padded.withUnsafeMutableBufferPointer {
                PaddedConvolution.pad(xp.baseAddress!, channels: t.c, height: t.h, width: t.w, pad: p, into: $0.baseAddress!)
                PaddedConvolution.zeroSlack($0.baseAddress!, channels: t.c, height: t.h, width: t.w, pad: p)
            }
        }
        padded.withUnsafeBufferPointer { pp in
            let segments = PaddedConvolution.segments(pp.baseAddress!, channels: t.c, height: t.h, width: t.w, kernel: t.k, pad: p)
            bias.withUnsafeBufferPointer { bp in
                grid.withUnsafeMutableBufferPointer { GEMM.multiply(packed, segments, n: n, $0.baseAddress!, ldc: n, bias: bp.baseAddress!, threads: 2) }
            }
        }
        grid.withUnsafeBufferPointer { gp in
            y.withUnsafeMutableBufferPointer {
                PaddedConvolution.compact(gp.baseAddress!, channels: t.o, height: t.h, width: t.w, pad: p, into: $0.baseAddress!)
            }
        }
        #expect(relativeError(y, want.values) < 1e-5, "\(t)")
    }
}
