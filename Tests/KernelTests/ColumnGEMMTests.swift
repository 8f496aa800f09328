import DenseKitKernels
import TestSupport
import Testing

/// The integer GEMM and its im2col against the plain references.
@Suite struct ColumnGEMMTests {
    static func codes(_ count: Int, _ range: ClosedRange<Int32>, _ rng: inout SeededRandom) -> [Int32] {
        (0..<count).map { _ in Int32.random(in: range, using: &rng) }
    }

    /// Codes less zero points span -255...255; K up to 9 x 130: every sum is exact in int32.
    @Test(arguments: [(1, 1, 1), (7, 13, 5), (16, 64, 72), (33, 17, 1170), (10, 1, 16)])
    func gemmMatchesTheTripleLoop(_ size: (Int, Int, Int)) {
        let (m, n, k) = size
        var rng = SeededRandom(UInt64(m * 1000 + n * 10 + k))
        let a = Self.codes(m * k, -255...255, &rng)
        let b = Self.codes(k * n, -255...255, &rng)
        var c = [Int32](repeating: 7, count: m * n)
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { ColumnGEMM.multiply(a, b, into: $0, m: m, n: n, k: k) }
            }
        }
        let want = Reference.integerGEMM(a, b, m: m, n: n, k: k)
        #expect(c == want)
        #expect(want.contains { $0 != 0 })
    }

    /// The exact GEMM on floats (the integer executor's) against the triple loop: random codes less zero points,
    /// and the worst case, every value 255, where K = 2000 sums to 130 million, far past float32's exact 2^24 (so
    /// the chunking is what keeps it exact). Sizes off the GEMM's 8 x 32 tile.
    @Test(arguments: [
        (1, 1, 1, false), (7, 13, 5, false), (16, 64, 72, false), (33, 17, 1170, false),
        (9, 70, 2000, false), (9, 70, 2000, true), (10, 1, 16, true),
    ])
    func exactGEMMMatchesTheTripleLoop(_ size: (Int, Int, Int, Bool)) {
        let (m, n, k, extreme) = size
        var rng = SeededRandom(UInt64(m * 1000 + n * 10 + k))
        let a = extreme ? [Int32](repeating: 255, count: m * k) : Self.codes(m * k, -255...255, &rng)
        let b = extreme ? [Int32](repeating: 255, count: k * n) : Self.codes(k * n, -255...255, &rng)
        let weights = ExactIntegerGEMM.Weights(a, rows: m, k: k, maxB: 255)
        let c = b.map(Float.init).withUnsafeBufferPointer { ExactIntegerGEMM.multiply(weights, $0.baseAddress!, n: n) }
        let want = Reference.integerGEMM(a, b, m: m, n: n, k: k)
        #expect(c == want)
        #expect(want.contains { $0 != 0 })
        if extreme, k > 1000 { #expect(want.allSatisfy { $0 == Int32(k) * 255 * 255 }) }
    }

    /// im2col then the GEMM is the direct convolution (small codes, so the float reference is exact too).
    @Test(arguments: [(3, 9, 7, 3, 1, [1, 1, 1, 1]), (4, 8, 8, 7, 2, [3, 3, 3, 3]), (5, 6, 5, 1, 1, [0, 0, 0, 0])])
    func im2colThenGEMMIsTheConvolution(_ shape: (Int, Int, Int, Int, Int, [Int])) {
        let (channels, height, width, kernel, stride, pads) = shape
        let outChannels = 6
        var rng = SeededRandom(UInt64(channels * 100 + kernel))
        let input = Self.codes(channels * height * width, -15...15, &rng)
        let weight = Self.codes(outChannels * channels * kernel * kernel, -15...15, &rng)
        let (columns, oh, ow) = ColumnGEMM.im2col(
            input, channels: channels, height: height, width: width, kernel: kernel, stride: stride, pads: pads)
        let k = channels * kernel * kernel
        let product = Reference.integerGEMM(weight, columns, m: outChannels, n: oh * ow, k: k)
        let direct = Reference.conv(
            input.map(Float.init), channels: channels, height: height, width: width, weight: weight.map(Float.init),
            outChannels: outChannels, kernel: kernel, stride: stride, pads: pads, bias: nil)
        #expect((oh, ow) == (direct.height, direct.width))
        #expect(product.map(Float.init) == direct.values)
    }

    /// In float32 (a float layer of a partly quantised model): the direct convolution within float reassociation.
    @Test func floatColumnsThenGEMMIsTheConvolution() {
        var rng = SeededRandom(77)
        let (channels, height, width, kernel, outChannels) = (6, 11, 9, 3, 5)
        let input = (0..<(channels * height * width)).map { _ in Float.random(in: -2...2, using: &rng) }
        let weight = (0..<(outChannels * channels * kernel * kernel)).map { _ in Float.random(in: -1...1, using: &rng) }
        let (columns, oh, ow) = ColumnGEMM.im2col(
            input, channels: channels, height: height, width: width, kernel: kernel, stride: 2, pads: [1, 0, 1, 2])
        var product = [Float](repeating: 0, count: outChannels * oh * ow)
        weight.withUnsafeBufferPointer { a in
            columns.withUnsafeBufferPointer { b in
                product.withUnsafeMutableBufferPointer {
                    ColumnGEMM.multiply(a, b, into: $0, m: outChannels, n: oh * ow, k: channels * kernel * kernel)
                }
            }
        }
        let direct = Reference.conv(
            input, channels: channels, height: height, width: width, weight: weight, outChannels: outChannels,
            kernel: kernel, stride: 2, pads: [1, 0, 1, 2], bias: nil)
        #expect((oh, ow) == (direct.height, direct.width) && product.count == direct.values.count)
        let worst = zip(product, direct.values).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst < 1e-5 && direct.values.contains { abs($0) > 1 }, "\(worst)")
    }
}
