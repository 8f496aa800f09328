import DenseKitKernels
import TestSupport
import Testing

/// The phase-plane convolution (split, one segmented GEMM, compact) against the direct reference.
@Suite struct PhaseConvolutionTests {
    struct Case: Sendable, CustomStringConvertible {
        var c: Int, h: Int, w: Int, o: Int, k: Int, stride: Int, pads: [Int]
        var description: String { "c\(c) \(h)x\(w) o\(o) k\(k)/\(stride) pads \(pads)" }
    }

    static let cases = [
        Case(c: 3, h: 17, w: 23, o: 5, k: 7, stride: 2, pads: [3, 3, 3, 3]),  // a DenseNet stem, odd sizes
        Case(c: 3, h: 32, w: 32, o: 64, k: 7, stride: 2, pads: [3, 3, 3, 3]),
        Case(c: 13, h: 9, w: 11, o: 4, k: 3, stride: 1, pads: [1, 1, 1, 1]),
        Case(c: 20, h: 7, w: 7, o: 19, k: 3, stride: 1, pads: [1, 1, 1, 1]),
        Case(c: 300, h: 6, w: 5, o: 9, k: 3, stride: 1, pads: [1, 1, 1, 1]),  // channels across K blocks
        Case(c: 3, h: 5, w: 6, o: 2, k: 5, stride: 1, pads: [2, 2, 2, 2]),
        Case(c: 2, h: 10, w: 9, o: 3, k: 3, stride: 2, pads: [0, 0, 0, 0]),
        Case(c: 4, h: 11, w: 10, o: 6, k: 3, stride: 3, pads: [1, 0, 2, 1]),  // asymmetric pads, stride 3
        Case(c: 5, h: 8, w: 7, o: 3, k: 1, stride: 2, pads: [0, 0, 0, 0]),  // kernel smaller than stride
        Case(c: 6, h: 9, w: 8, o: 33, k: 4, stride: 2, pads: [1, 2, 2, 1]),  // even kernel
    ]

    @Test(arguments: cases)
    func matchesDirectConvolution(_ t: Case) {
        var rng = SeededRandom(UInt64(t.c * 31 + t.h * 7 + t.o))
        let x = rng.floats(t.c * t.h * t.w)
        let weight = rng.floats(t.o * t.c * t.k * t.k)
        let bias = rng.floats(t.o)
        let want = Reference.conv(
            x, channels: t.c, height: t.h, width: t.w, weight: weight, outChannels: t.o,
            kernel: t.k, stride: t.stride, pads: t.pads, bias: bias)
        let g = PhaseConvolution(channels: t.c, height: t.h, width: t.w, kernel: t.k, stride: t.stride, pads: t.pads)
        #expect(g.outHeight == want.height && g.outWidth == want.width)
        var planes = [Float](repeating: .nan, count: g.inputCount)
        var grid = [Float](repeating: .nan, count: t.o * g.gridCount)
        var y = [Float](repeating: .nan, count: t.o * g.outHeight * g.outWidth)
        let packed = PackedMatrix(
            rows: t.o, cols: t.c * t.k * t.k,
            values: PhaseConvolution.tapMajor(weight, outChannels: t.o, inChannels: t.c, kernel: t.k))
        x.withUnsafeBufferPointer { xp in
            planes.withUnsafeMutableBufferPointer {
                // Split in two channel ranges, as the executor's threads do.
                g.split(xp.baseAddress!, channels: 0..<(t.c / 2), into: $0.baseAddress!)
                g.split(xp.baseAddress!, channels: (t.c / 2)..<t.c, into: $0.baseAddress!)
                g.zeroSlack($0.baseAddress!)
            }
        }
        planes.withUnsafeBufferPointer { pp in
            let segments = g.segments(pp.baseAddress!)
            bias.withUnsafeBufferPointer { bp in
                grid.withUnsafeMutableBufferPointer {
                    GEMM.multiply(
                        packed, segments, n: g.gridCount, $0.baseAddress!, ldc: g.gridCount, bias: bp.baseAddress!,
                        threads: 2)
                }
            }
        }
        grid.withUnsafeBufferPointer { gp in
            y.withUnsafeMutableBufferPointer { g.compact(gp.baseAddress!, channels: 0..<t.o, into: $0.baseAddress!) }
        }
        #expect(relativeError(y, want.values) < 1e-5, "\(t)")
    }
}

/// The shifted convolution (every tap's tiles added into the output at the tap's shift) against the
/// direct reference, on `PlaneLayout` maps whose border cells hold NaN: they must not be read, the
/// output planes must be fully overwritten, and nothing outside them touched.
@Suite struct ShiftedConvolutionTests {
    struct Case: Sendable, CustomStringConvertible {
        var c: Int, h: Int, w: Int, o: Int, k: Int
        var description: String { "c\(c) \(h)x\(w) o\(o) k\(k)" }
    }

    static let cases = [
        Case(c: 128, h: 14, w: 14, o: 32, k: 3),  // a DenseNet-121 block-3 layer
        Case(c: 13, h: 9, w: 11, o: 4, k: 3),  // fewer outputs than one 8-row block
        Case(c: 20, h: 7, w: 7, o: 19, k: 3),  // a partial last block of outputs
        Case(c: 300, h: 6, w: 5, o: 9, k: 3),  // channels across K blocks
        Case(c: 3, h: 5, w: 6, o: 2, k: 5),  // border 2
        Case(c: 16, h: 3, w: 40, o: 33, k: 3),  // rows wider than a panel
        Case(c: 5, h: 4, w: 1, o: 8, k: 5),  // rows narrower than the kernel's reach
        Case(c: 7, h: 1, w: 1, o: 8, k: 3),  // a 1x1 image: every tap but the centre reads padding
    ]

    @Test(arguments: cases)
    func matchesDirectConvolution(_ t: Case) {
        var rng = SeededRandom(UInt64(t.c * 131 + t.h * 17 + t.o))
        var x = rng.floats(t.c * t.h * t.w)
        let weight = rng.floats(t.o * t.c * t.k * t.k)
        let bias = rng.floats(t.o)
        // Channels of +0, as a ReLU leaves them: the GEMM leaves their rows out of its K loop.
        for ch in stride(from: 1, to: t.c, by: 4) { for i in 0..<(t.h * t.w) { x[ch * t.h * t.w + i] = 0 } }
        let layout = PlaneLayout(height: t.h, width: t.w, border: t.k / 2)
        var planes = [Float](repeating: .nan, count: t.c * layout.plane)
        x.withUnsafeBufferPointer { xp in
            planes.withUnsafeMutableBufferPointer {
                layout.unpack(xp.baseAddress!, channels: 0..<t.c, into: $0.baseAddress!)
            }
        }
        // The same input panel-major (as a bottleneck writes it), NaN past the image in the last panel.
        let panels = (t.h * t.w + 31) / 32
        var panelled = [Float](repeating: .nan, count: panels * t.c * 32)
        for ch in 0..<t.c {
            for j in 0..<(t.h * t.w) { panelled[(j / 32) * t.c * 32 + ch * 32 + j % 32] = x[ch * t.h * t.w + j] }
        }
        let packed = ShiftedConvolution.pack(weight, outChannels: t.o, inChannels: t.c, kernel: t.k)
        for (threads, withBias, panelMajor) in [
            (1, true, false), (2, true, false), (2, false, false), (1, true, true), (2, false, true),
        ] {
            let want = Reference.conv(
                x, channels: t.c, height: t.h, width: t.w, weight: weight, outChannels: t.o, kernel: t.k,
                stride: 1, pads: [Int](repeating: t.k / 2, count: 4), bias: withBias ? bias : nil)
            // The output planes between two guard zones that must keep their values.
            let guardCount = 2 * layout.plane + 64
            var out = [Float](repeating: .nan, count: guardCount + t.o * layout.plane + guardCount)
            for i in 0..<guardCount { (out[i], out[out.count - 1 - i]) = (-3, -3) }
            var y = [Float](repeating: .nan, count: t.o * t.h * t.w)
            (panelMajor ? panelled : planes).withUnsafeBufferPointer { pp in
                bias.withUnsafeBufferPointer { bp in
                    out.withUnsafeMutableBufferPointer {
                        let planes = $0.baseAddress! + guardCount
                        let input =
                            panelMajor
                            ? GEMM.segments(pp.baseAddress!, ldb: 32, k: t.c, panelStride: t.c * 32)
                            : GEMM.segments(pp.baseAddress! + layout.interior, ldb: layout.plane, k: t.c)
                        ShiftedConvolution.run(
                            packed, outChannels: t.o, kernel: t.k, input, layout: layout,
                            into: planes, bias: withBias ? bp.baseAddress! : nil, threads: threads)
                        y.withUnsafeMutableBufferPointer {
                            layout.pack(planes, channels: 0..<t.o, into: $0.baseAddress!)
                        }
                    }
                }
            }
            #expect(
                relativeError(y, want.values) < 1e-5,
                "\(t) threads \(threads) bias \(withBias) panel-major \(panelMajor)")
            #expect(
                out[..<guardCount].allSatisfy { $0 == -3 } && out[(out.count - guardCount)...].allSatisfy { $0 == -3 },
                "\(t)")
            #expect(
                out[guardCount..<(out.count - guardCount)].allSatisfy { !$0.isNaN }, "\(t): output cells left unwritten"
            )
        }
    }
}
