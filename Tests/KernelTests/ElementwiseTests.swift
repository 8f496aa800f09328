import DenseKitKernels
import TestSupport
import Testing

/// The SIMD BN-ReLU kernels and max pooling against compositions of the reference kernels.
@Suite struct ElementwiseTests {
    let channels = 5
    let scale: [Float] = [0.5, 1.5, -0.25, 2, 1]
    let shift: [Float] = [0.1, -0.2, 0.3, 0, -1]
    let mean: [Float] = [0, 0, 0, 0, 0]
    let variance: [Float] = [1, 1, 1, 1, 1]

    /// Reference BN whose affine form is exactly (scale, shift).
    func bnReLU(_ x: [Float]) -> [Float] {
        Reference.relu(
            Reference.batchNorm(
                x, channels: channels, gamma: scale, beta: shift, mean: mean,
                variance: variance.map { $0 - 1e-3 }, epsilon: 1e-3))
    }

    @Test(arguments: [(3, 7), (4, 9), (6, 6), (5, 35)])
    func batchNormReLU(_ size: (Int, Int)) {
        var rng = SeededRandom(11)
        let n = size.0 * size.1
        let x = rng.floats(channels * n, -3...3)
        var y = [Float](repeating: .nan, count: x.count)
        Elementwise.batchNormReLU(x, &y, channels: channels, size: n, scale: scale, shift: shift)
        #expect(relativeError(y, bnReLU(x)) < 1e-6)
    }

    @Test(arguments: [(4, 4), (7, 9), (10, 40), (56, 56), (14, 14), (5, 13), (6, 31)])
    func batchNormReLUAvgPool(_ size: (Int, Int)) {
        var rng = SeededRandom(12)
        let (h, w) = size
        let x = rng.floats(channels * h * w, -3...3)
        var y = [Float](repeating: .nan, count: channels * (h / 2) * (w / 2))
        Elementwise.batchNormReLUAvgPool2(x, &y, channels: channels, height: h, width: w, scale: scale, shift: shift)
        let want = Reference.pool(
            bnReLU(x), channels: channels, height: h, width: w, max: false, kernel: 2, stride: 2,
            pads: [0, 0, 0, 0], countIncludePad: false)
        #expect(relativeError(y, want.values) < 1e-6)
    }

    @Test(arguments: [1, 7, 49, 50])
    func batchNormReLUGlobalPool(_ size: Int) {
        var rng = SeededRandom(13)
        let x = rng.floats(channels * size, -3...3)
        var y = [Float](repeating: .nan, count: channels)
        Elementwise.batchNormReLUGlobalPool(x, &y, channels: channels, size: size, scale: scale, shift: shift)
        #expect(relativeError(y, Reference.globalAveragePool(bnReLU(x), channels: channels)) < 1e-5)
        y = [Float](repeating: .nan, count: channels)
        Elementwise.batchNormReLUGlobalPool(
            x, &y, channels: channels, size: size, scale: scale, shift: shift, max: true)
        #expect(relativeError(y, Reference.globalMaxPool(bnReLU(x), channels: channels)) < 1e-6)
    }

    @Test(arguments: [
        (9, 11, 3, 2, 1), (8, 8, 2, 2, 0), (5, 7, 3, 1, 1), (112, 112, 3, 2, 1), (37, 41, 3, 2, 1), (40, 45, 2, 2, 0),
        (20, 40, 3, 1, 1), (10, 13, 3, 3, 1), (6, 20, 1, 2, 0),
    ])
    func maxPool(_ t: (Int, Int, Int, Int, Int)) {
        var rng = SeededRandom(14)
        let (h, w, k, s, p) = t
        let x = rng.floats(channels * h * w, -3...3)
        let want = Reference.pool(
            x, channels: channels, height: h, width: w, max: true, kernel: k, stride: s,
            pads: [p, p, p, p], countIncludePad: false)
        var y = [Float](repeating: .nan, count: want.values.count)
        Elementwise.maxPool(
            x, &y, channels: channels, height: h, width: w, kernel: k, stride: s, padTop: p, padLeft: p,
            outHeight: want.height, outWidth: want.width)
        #expect(y == want.values)
        // The same planes read from rows 3 floats wider (a convolution's output grid).
        let ld = w + 3
        var wide = [Float](repeating: .nan, count: channels * h * ld)
        for r in 0..<(channels * h) { for x0 in 0..<w { wide[r * ld + x0] = x[r * w + x0] } }
        var z = [Float](repeating: .nan, count: want.values.count)
        Elementwise.maxPool(
            wide, &z, channels: channels, height: h, width: w, rowStride: ld, kernel: k, stride: s,
            padTop: p, padLeft: p, outHeight: want.height, outWidth: want.width)
        #expect(z == want.values)
    }
}

/// The SIMD matrix-vector product (the classifier) against the reference linear layer.
@Suite struct MatVecTests {
    @Test(arguments: [(10, 16), (7, 33), (1000, 1024), (3, 5)])
    func matchesReferenceLinear(_ shape: (rows: Int, cols: Int)) {
        var rng = SeededRandom(UInt64(shape.rows * 31 + shape.cols))
        let w = rng.floats(shape.rows * shape.cols)
        let x = rng.floats(shape.cols)
        let b = rng.floats(shape.rows)
        let want = Reference.linear(x, weight: w, bias: b, outFeatures: shape.rows)
        var y = [Float](repeating: .nan, count: shape.rows)
        Elementwise.matVec(w, x, b, rows: shape.rows, cols: shape.cols, into: &y)
        #expect(relativeError(y, want) < 1e-5)
    }
}
