import DenseKitKernels
import TestSupport
import Testing

/// The integer GEMMs and their im2col against the plain references.
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

    /// The integer executor's GEMM (16-bit pairs, int32 sums) against the triple loop: random codes less zero points,
    /// and the extremes, every value 255 (K = 2000 sums to 130 million) and -255 against 255. Sizes off its 6 x 16
    /// tile, odd and even K.
    @Test(arguments: [
        (1, 1, 1, 0), (7, 13, 5, 0), (16, 64, 72, 0), (33, 17, 1170, 0), (6, 16, 2, 0), (13, 33, 3, 0),
        (9, 70, 2000, 1), (10, 1, 16, 1), (7, 17, 9, -1),
    ])
    func integerGEMMMatchesTheTripleLoop(_ size: (Int, Int, Int, Int32)) {
        let (m, n, k, extreme) = size
        var rng = SeededRandom(UInt64(m * 1000 + n * 10 + k))
        let a = extreme != 0 ? [Int32](repeating: 255 * extreme, count: m * k) : Self.codes(m * k, -255...255, &rng)
        let b = extreme != 0 ? [Int32](repeating: 255, count: k * n) : Self.codes(k * n, -255...255, &rng)
        let c = IntegerGEMM.multiply(IntegerGEMM.Weights(a, rows: m, k: k), Self.columns(b, k: k, n: n))
        let want = Reference.integerGEMM(a, b, m: m, n: n, k: k)
        #expect(c == want)
        #expect(want.contains { $0 != 0 })
        if extreme != 0 { #expect(want.allSatisfy { $0 == Int32(k) * 255 * 255 * extreme }) }
    }

    /// B (K x N row-major) as `IntegerGEMM.Columns`: a pointwise convolution of a K-channel map of N positions.
    static func columns(_ b: [Int32], k: Int, n: Int) -> IntegerGEMM.Columns {
        b.withUnsafeBufferPointer {
            IntegerGEMM.Columns(
                convolving: $0, zeroPoint: 0, channels: k, height: 1, width: n, kernel: 1, stride: 1,
                pads: [0, 0, 0, 0])
        }
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

    /// The integer executor's columns of uint8 codes less their zero point, times the weights, are the direct
    /// convolution of the codes less the zero point with padding 0 (the zero point's real value): odd and even channel
    /// counts, a 7 x 7 stride-2 stem, pointwise convs (their own, interleaved path), maps smaller than the kernel, and
    /// the stride-1 "same" convs the shifted arrangement reads without im2col (3 x 3 and 5 x 5, odd channel counts,
    /// a 1 x 1 map, and a single row whose outputs are whole tiles, which the product returns in place).
    @Test(arguments: [
        (3, 20, 17, 7, 2, [3, 3, 3, 3]), (4, 9, 8, 3, 1, [1, 1, 1, 1]), (5, 6, 5, 1, 1, [0, 0, 0, 0]),
        (6, 7, 9, 1, 1, [0, 0, 0, 0]), (2, 8, 8, 1, 2, [0, 0, 0, 0]), (2, 1, 1, 3, 2, [1, 1, 1, 1]),
        (3, 2, 3, 3, 2, [1, 1, 1, 1]), (5, 6, 7, 3, 1, [1, 1, 1, 1]), (3, 7, 6, 5, 1, [2, 2, 2, 2]),
        (3, 1, 1, 3, 1, [1, 1, 1, 1]), (2, 1, 16, 3, 1, [1, 1, 1, 1]), (4, 5, 4, 3, 1, [1, 0, 1, 0]),
    ])
    func integerColumnsThenGEMMIsTheConvolution(_ shape: (Int, Int, Int, Int, Int, [Int])) {
        let (channels, height, width, kernel, stride, pads) = shape
        let (outChannels, zero) = (7, Int32(37))
        var rng = SeededRandom(UInt64(channels * 100 + kernel * 10 + stride))
        let input = Self.codes(channels * height * width, 0...255, &rng)
        let weight = Self.codes(outChannels * channels * kernel * kernel, -127...127, &rng)
        let columns = input.withUnsafeBufferPointer {
            IntegerGEMM.Columns(
                convolving: $0, zeroPoint: zero, channels: channels, height: height, width: width, kernel: kernel,
                stride: stride, pads: pads)
        }
        let arrangement = IntegerGEMM.Arrangement.of(kernel: kernel, stride: stride, pads: pads)
        let same = stride == 1 && kernel > 1 && pads.allSatisfy { $0 == kernel / 2 }
        #expect(columns.arrangement == arrangement && arrangement == (same ? .shifted(kernel: kernel) : .columns))
        let product = IntegerGEMM.multiply(
            IntegerGEMM.Weights(weight, rows: outChannels, k: channels * kernel * kernel, arrangement: arrangement),
            columns)
        // Integers below 2^24 throughout, so the float reference is exact.
        let direct = Reference.conv(
            input.map { Float($0 - zero) }, channels: channels, height: height, width: width,
            weight: weight.map(Float.init), outChannels: outChannels, kernel: kernel, stride: stride, pads: pads,
            bias: nil)
        #expect(columns.n == direct.height * direct.width)
        #expect(product.map(Float.init) == direct.values)
    }

    /// Pointwise columns made a plane at a time (a BatchNorm's output written straight into them, never the whole map)
    /// times the weights are the direct convolution, each plane asked for once and in order: odd and even channel
    /// counts, maps of whole tiles and not.
    @Test(arguments: [(5, 6, 7), (4, 8, 8), (1, 3, 3), (6, 1, 1)])
    func pointwiseColumnsMadeAPlaneAtATimeAreTheConvolution(_ shape: (Int, Int, Int)) {
        let (channels, height, width) = shape
        let (outChannels, zero, plane) = (7, Int32(37), height * width)
        var rng = SeededRandom(UInt64(channels * 100 + height * 10 + width))
        let input = Self.codes(channels * plane, 0...255, &rng)
        let weight = Self.codes(outChannels * channels, -127...127, &rng)
        var asked: [Int] = []
        let columns = IntegerGEMM.Columns(pointwise: channels, height: height, width: width, zeroPoint: zero) {
            channel, target in
            asked.append(channel)
            for i in 0..<plane { target[i] = input[channel * plane + i] }
        }
        let product = IntegerGEMM.multiply(IntegerGEMM.Weights(weight, rows: outChannels, k: channels), columns)
        let direct = Reference.conv(
            input.map { Float($0 - zero) }, channels: channels, height: height, width: width,
            weight: weight.map(Float.init), outChannels: outChannels, kernel: 1, stride: 1, pads: [0, 0, 0, 0],
            bias: nil)
        #expect(asked == Array(0..<channels))
        #expect(product.map(Float.init) == direct.values)
        #expect(direct.values.contains { $0 != 0 })
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
