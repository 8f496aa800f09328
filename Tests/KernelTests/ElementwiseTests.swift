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
    func bnReLU(_ input: [Float]) -> [Float] {
        Reference.relu(
            Reference.batchNorm(
                input, channels: channels, gamma: scale, beta: shift, mean: mean,
                variance: variance.map { $0 - 1e-3 }, epsilon: 1e-3))
    }

    @Test(arguments: [(3, 7), (4, 9), (6, 6), (5, 35)])
    func batchNormReLU(_ size: (Int, Int)) {
        var rng = SeededRandom(11)
        let pixels = size.0 * size.1
        let input = rng.floats(channels * pixels, -3...3)
        var output = [Float](repeating: .nan, count: input.count)
        Elementwise.batchNormReLU(input, &output, channels: channels, size: pixels, scale: scale, shift: shift)
        #expect(relativeError(output, bnReLU(input)) < 1e-6)
    }

    @Test(arguments: [(4, 4), (7, 9), (10, 40), (56, 56), (14, 14), (5, 13), (6, 31)])
    func batchNormReLUAvgPool(_ size: (Int, Int)) {
        var rng = SeededRandom(12)
        let (mapHeight, mapWidth) = size
        let input = rng.floats(channels * mapHeight * mapWidth, -3...3)
        var output = [Float](repeating: .nan, count: channels * (mapHeight / 2) * (mapWidth / 2))
        Elementwise.batchNormReLUAvgPool2(
            input, &output, channels: channels, height: mapHeight, width: mapWidth, scale: scale, shift: shift)
        let want = Reference.pool(
            bnReLU(input), channels: channels, height: mapHeight, width: mapWidth, max: false, kernel: 2, stride: 2,
            pads: [0, 0, 0, 0], countIncludePad: false)
        #expect(relativeError(output, want.values) < 1e-6)
    }

    @Test(arguments: [1, 7, 49, 50])
    func batchNormReLUGlobalPool(_ size: Int) {
        var rng = SeededRandom(13)
        let input = rng.floats(channels * size, -3...3)
        var output = [Float](repeating: .nan, count: channels)
        Elementwise.batchNormReLUGlobalPool(input, &output, channels: channels, size: size, scale: scale, shift: shift)
        #expect(relativeError(output, Reference.globalAveragePool(bnReLU(input), channels: channels)) < 1e-5)
        output = [Float](repeating: .nan, count: channels)
        Elementwise.batchNormReLUGlobalPool(
            input, &output, channels: channels, size: size, scale: scale, shift: shift, max: true)
        #expect(relativeError(output, Reference.globalMaxPool(bnReLU(input), channels: channels)) < 1e-6)
    }

    @Test(arguments: [
        (9, 11, 3, 2, 1), (8, 8, 2, 2, 0), (5, 7, 3, 1, 1), (112, 112, 3, 2, 1), (37, 41, 3, 2, 1), (40, 45, 2, 2, 0),
        (20, 40, 3, 1, 1), (10, 13, 3, 3, 1), (6, 20, 1, 2, 0),
    ])
    func maxPool(_ geometry: (Int, Int, Int, Int, Int)) {
        var rng = SeededRandom(14)
        let (mapHeight, mapWidth, kernel, stride, pad) = geometry
        let input = rng.floats(channels * mapHeight * mapWidth, -3...3)
        let want = Reference.pool(
            input, channels: channels, height: mapHeight, width: mapWidth, max: true, kernel: kernel, stride: stride,
            pads: [pad, pad, pad, pad], countIncludePad: false)
        var output = [Float](repeating: .nan, count: want.values.count)
        Elementwise.maxPool(
            input, &output, channels: channels, height: mapHeight, width: mapWidth, kernel: kernel, stride: stride,
            padTop: pad, padLeft: pad,
            outHeight: want.height, outWidth: want.width)
        #expect(output == want.values)
        // The same planes read from rows 3 floats wider (a convolution's output grid).
        let ld = mapWidth + 3
        var wide = [Float](repeating: .nan, count: channels * mapHeight * ld)
        for r in 0..<(channels * mapHeight) { for x0 in 0..<mapWidth { wide[r * ld + x0] = input[r * mapWidth + x0] } }
        var strided = [Float](repeating: .nan, count: want.values.count)
        Elementwise.maxPool(
            wide, &strided, channels: channels, height: mapHeight, width: mapWidth, rowStride: ld, kernel: kernel,
            stride: stride,
            padTop: pad, padLeft: pad, outHeight: want.height, outWidth: want.width)
        #expect(strided == want.values)
    }
}

/// The SIMD matrix-vector product (the classifier) against the reference linear layer.
@Suite struct MatVecTests {
    @Test(arguments: [(10, 16), (7, 33), (1000, 1024), (3, 5)])
    func matchesReferenceLinear(_ shape: (rows: Int, cols: Int)) {
        var rng = SeededRandom(UInt64(shape.rows * 31 + shape.cols))
        let matrix = rng.floats(shape.rows * shape.cols)
        let input = rng.floats(shape.cols)
        let bias = rng.floats(shape.rows)
        let want = Reference.linear(input, weight: matrix, bias: bias, outFeatures: shape.rows)
        var output = [Float](repeating: .nan, count: shape.rows)
        Elementwise.matVec(matrix, input, bias, rows: shape.rows, cols: shape.cols, into: &output)
        #expect(relativeError(output, want) < 1e-5)
    }
}
