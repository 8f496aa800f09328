import DenseKitKernels
import TestSupport
import Testing

/// Winograd F(4x4, 3x3) against the direct convolution computed in double precision,
/// on odd shapes: maps that are not whole tiles, one pixel, rows of more than 32 tiles (split panels),
/// short tile rows packed into a vector with and without a lane between them, partial blocks of
/// outputs, many channels; on 1 and 2 threads (a map of one panel is split among both, step by step). Input images sit
/// in planes with NaN between them and the
/// output planes hold NaN outside the images: nothing there may be read, and nothing but the images
/// may be written; or in planes with a margin of NaN that may be read and must not be used.
@Suite struct WinogradConvolutionTests {
    struct Case: Sendable, CustomStringConvertible {
        var c: Int, h: Int, w: Int, o: Int
        var description: String { "c\(c) \(h)x\(w) o\(o)" }
    }

    static let cases = [
        Case(c: 128, h: 56, w: 56, o: 32),  // a DenseNet-121 block-1 layer
        Case(c: 128, h: 28, w: 28, o: 32),  // block 2
        Case(c: 128, h: 14, w: 14, o: 32),  // block 3: four rows of 4 tiles fill one vector, no lane between
        Case(c: 9, h: 13, w: 15, o: 8),  // rows of 4 tiles, no lane between (column 15 is past the image)
        Case(c: 6, h: 10, w: 16, o: 5),  // rows of 4 tiles with a lane between: three to a vector
        Case(c: 10, h: 17, w: 12, o: 9),  // rows of 3 tiles with a lane between: four to a vector
        Case(c: 13, h: 9, w: 11, o: 4),  // fewer outputs than one 8-row tile
        Case(c: 20, h: 7, w: 7, o: 19),  // a partial last tile of outputs
        Case(c: 7, h: 1, w: 1, o: 8),  // one pixel: every tap but the centre reads padding
        Case(c: 5, h: 6, w: 150, o: 9),  // 38 tiles a row: panels split rows
        Case(c: 300, h: 5, w: 6, o: 10),  // many channels
        Case(c: 3, h: 33, w: 2, o: 33),  // narrow and tall, 33 outputs
    ]

    /// The direct 3x3 "same" convolution in double precision.
    static func exact(_ x: [Float], _ t: Case, _ weight: [Float], _ bias: [Float]) -> [Double] {
        var y = [Double](repeating: 0, count: t.o * t.h * t.w)
        for o in 0..<t.o {
            for oy in 0..<t.h {
                for ox in 0..<t.w {
                    var s = Double(bias[o])
                    for c in 0..<t.c {
                        for ky in 0..<3 where (0..<t.h).contains(oy + ky - 1) {
                            for kx in 0..<3 where (0..<t.w).contains(ox + kx - 1) {
                                s +=
                                    Double(weight[((o * t.c + c) * 3 + ky) * 3 + kx])
                                    * Double(x[(c * t.h + oy + ky - 1) * t.w + ox + kx - 1])
                            }
                        }
                    }
                    y[(o * t.h + oy) * t.w + ox] = s
                }
            }
        }
        return y
    }

    /// The largest difference from `exact` over its largest magnitude; infinite where `y` holds a
    /// value that is not finite (which `max` would pass over).
    static func error(_ y: [Float], _ exact: [Double]) -> Double {
        guard y.allSatisfy(\.isFinite) else { return .infinity }
        let worst = zip(y, exact).map { abs(Double($0) - $1) }.max() ?? 0
        return worst / max(exact.map(abs).max() ?? 0, .leastNormalMagnitude)
    }

    @Test(arguments: cases)
    func matchesDirectConvolution(_ t: Case) {
        var rng = SeededRandom(UInt64(t.c * 31 + t.h * 7 + t.w * 3 + t.o))
        let x = rng.floats(t.c * t.h * t.w)
        let weight = rng.floats(t.o * t.c * 9)
        let bias = rng.floats(t.o)
        let exact = Self.exact(x, t, weight, bias)
        let transform = WinogradTransform.f4
        let weights = WinogradWeights(weight, outChannels: t.o, inChannels: t.c, transform: transform)
        // Images 5 floats apart, NaN in the gaps; output planes with 7 NaN before and after each image.
        let (inStride, outStride, gap) = (t.h * t.w + 5, t.h * t.w + 14, 7)
        var input = [Float](repeating: .nan, count: t.c * inStride)
        for c in 0..<t.c { for i in 0..<(t.h * t.w) { input[c * inStride + i] = x[c * t.h * t.w + i] } }
        let scratch = (0..<2).map { _ in WinogradConvolution.Scratch(transform, inChannels: t.c, outChannels: t.o) }
        // The scratch buffers as a layer before leaves them: full of another map's rows (NaN here),
        // none of which may reach this one's outputs.
        let (wide, nan) = (64, [Float](repeating: .nan, count: t.c * 6 * 64))
        var ignored = [Float](repeating: 0, count: t.o * 6 * wide)
        nan.withUnsafeBufferPointer { ip in
            ignored.withUnsafeMutableBufferPointer {
                WinogradConvolution.run(
                    weights, ip.baseAddress!, inputStride: 6 * wide, height: 6, width: wide,
                    into: $0.baseAddress!, outputStride: 6 * wide, bias: nil, scratch: scratch, threads: 2)
            }
        }
        // Also as the executor's planes: a margin of w + 1 floats before and after each image that
        // may be read (NaN here: every value read there must go unused).
        let margin = t.w + 1
        let marginStride = t.h * t.w + 2 * margin
        var bordered = [Float](repeating: .nan, count: t.c * marginStride)
        for c in 0..<t.c { for i in 0..<(t.h * t.w) { bordered[c * marginStride + margin + i] = x[c * t.h * t.w + i] } }
        for (threads, margined) in [(1, false), (2, false), (1, true), (2, true)] {
            var out = [Float](repeating: .nan, count: t.o * outStride)
            (margined ? bordered : input).withUnsafeBufferPointer { ip in
                bias.withUnsafeBufferPointer { bp in
                    out.withUnsafeMutableBufferPointer {
                        WinogradConvolution.run(
                            weights, ip.baseAddress! + (margined ? margin : 0),
                            inputStride: margined ? marginStride : inStride,
                            height: t.h, width: t.w, into: $0.baseAddress! + gap, outputStride: outStride,
                            bias: bp.baseAddress!, scratch: scratch, threads: threads,
                            inputMargin: margined ? margin : 0)
                    }
                }
            }
            var y: [Float] = []
            for o in 0..<t.o {
                let plane = out[(o * outStride)..<((o + 1) * outStride)]
                #expect(
                    plane.prefix(gap).allSatisfy(\.isNaN) && plane.suffix(gap).allSatisfy(\.isNaN),
                    "\(t): wrote outside output \(o)'s image")
                y += plane.dropFirst(gap).prefix(t.h * t.w)
            }
            // The transforms' coefficients (up to 8 and 1/24) cost about one digit more than the
            // direct float32 sum loses.
            let e = Self.error(y, exact)
            #expect(e < 2e-5, "\(t) threads \(threads) margin \(margined): error \(e)")
            if threads == 1 && !margined { print("measured: F(4x4) \(t): \(e) of the largest output") }
        }
    }

    /// The transforms themselves: F(4x4, 3x3) of a single 1 at each input position of one tile
    /// gives the filter flipped into place, which pins every coefficient (a wrong one moves outputs by
    /// far more than rounding).
    @Test func impulseResponsesAreTheFilter() {
        let m = 4
        let t = Case(c: 1, h: m, w: m, o: 1)
        let weight: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        let weights = WinogradWeights(weight, outChannels: 1, inChannels: 1, transform: .f4)
        let scratch = [WinogradConvolution.Scratch(.f4, inChannels: 1, outChannels: 1)]
        for p in 0..<(m * m) {
            var x = [Float](repeating: 0, count: m * m)
            x[p] = 1
            var y = [Float](repeating: .nan, count: m * m)
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer {
                    WinogradConvolution.run(
                        weights, xp.baseAddress!, inputStride: m * m, height: m, width: m,
                        into: $0.baseAddress!, outputStride: m * m, bias: nil, scratch: scratch, threads: 1)
                }
            }
            let want = Self.exact(x, t, weight, [0])
            #expect(zip(y, want).allSatisfy { abs(Double($0) - $1) < 1e-4 }, "impulse at \(p): \(y) vs \(want)")
        }
    }

    /// Rows of tiles packed into a vector with no lane between them: a row's last tile reads the next
    /// tile row's first columns in place of the padding past the image, which must reach none of its
    /// outputs inside the image. The first column of every image row is huge and the rest zero: the
    /// last tiles' outputs (columns 12 and 13 of 14) are then exactly zero, where any of it leaking
    /// in would leave its rounding (about 1e23) in them.
    @Test func rowEndsSeeZeroPastTheImage() {
        let (h, w) = (14, 14)
        let weights = WinogradWeights([Float](repeating: 1, count: 9), outChannels: 1, inChannels: 1, transform: .f4)
        let scratch = [WinogradConvolution.Scratch(.f4, inChannels: 1, outChannels: 1)]
        var x = [Float](repeating: 0, count: h * w)
        for r in 0..<h { x[r * w] = 1e30 }
        var y = [Float](repeating: .nan, count: h * w)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer {
                WinogradConvolution.run(
                    weights, xp.baseAddress!, inputStride: h * w, height: h, width: w,
                    into: $0.baseAddress!, outputStride: h * w, bias: nil, scratch: scratch, threads: 1)
            }
        }
        for r in 0..<h {
            #expect(y[r * w + 12] == 0 && y[r * w + 13] == 0, "row \(r): \(y[(r * w + 10)..<(r * w + 14)])")
            // Columns 0 and 1 sum the huge column over the rows the filter covers.
            let rows = Float((max(0, r - 1)...min(h - 1, r + 1)).count)
            #expect(
                abs(y[r * w] / (rows * 1e30) - 1) < 1e-5 && abs(y[r * w + 1] / (rows * 1e30) - 1) < 1e-5, "row \(r)")
        }
    }
}

/// The transformed filters against the plain computation, bit for bit: U = G g G^T for each
/// (output, input) pair in double precision with G of F(4x4, 3x3) (Lavin and Gray), rounded once to
/// float, at position p of output o and input i in the GEMM's packing [p][o / 8][i][o % 8]; outputs
/// past the last one in their 8-row tile zero.
@Suite struct WinogradWeightsTests {
    static let g: [[Double]] = [
        [1.0 / 4, 0, 0], [-1.0 / 6, -1.0 / 6, -1.0 / 6], [-1.0 / 6, 1.0 / 6, -1.0 / 6],
        [1.0 / 24, 1.0 / 12, 1.0 / 6], [1.0 / 24, -1.0 / 12, 1.0 / 6], [0, 0, 1],
    ]

    @Test(arguments: [(outputs: 32, inputs: 128), (outputs: 13, inputs: 5), (outputs: 3, inputs: 1)])
    func matchesThePlainTransform(_ shape: (outputs: Int, inputs: Int)) {
        var random = SeededRandom(42)
        let weight = random.floats(shape.outputs * shape.inputs * 9, -2...2)
        let packed = WinogradWeights(weight, outChannels: shape.outputs, inChannels: shape.inputs, transform: .f4)
        let tiles = (shape.outputs + 7) / 8
        var expected = [Float](repeating: 0, count: 36 * tiles * shape.inputs * 8)
        for output in 0..<shape.outputs {
            for input in 0..<shape.inputs {
                let filter = (0..<9).map { Double(weight[(output * shape.inputs + input) * 9 + $0]) }
                let g = Self.g
                var rows = [[Double]](repeating: [0, 0, 0], count: 6)
                for r in 0..<6 {
                    for c in 0..<3 {
                        let first: Double = g[r][0] * filter[c] + g[r][1] * filter[3 + c]
                        rows[r][c] = first + g[r][2] * filter[6 + c]
                    }
                }
                for r in 0..<6 {
                    for c in 0..<6 {
                        let first: Double = rows[r][0] * g[c][0] + rows[r][1] * g[c][1]
                        let u = first + rows[r][2] * g[c][2]
                        expected[(((r * 6 + c) * tiles + output / 8) * shape.inputs + input) * 8 + output % 8] = Float(
                            u)
                    }
                }
            }
        }
        #expect(packed.storage.array.map(\.bitPattern) == expected.map(\.bitPattern))
    }
}
