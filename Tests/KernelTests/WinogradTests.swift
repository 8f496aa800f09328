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
        var channels: Int, height: Int, width: Int, outputs: Int
        var description: String { "c\(channels) \(height)x\(width) o\(outputs)" }
    }

    static let cases = [
        Case(channels: 128, height: 56, width: 56, outputs: 32),  // a DenseNet-121 block-1 layer
        Case(channels: 128, height: 28, width: 28, outputs: 32),  // block 2
        // block 3: four rows of 4 tiles fill one vector, no lane between
        Case(channels: 128, height: 14, width: 14, outputs: 32),
        // rows of 4 tiles, no lane between (column 15 is past the image)
        Case(channels: 9, height: 13, width: 15, outputs: 8),
        Case(channels: 6, height: 10, width: 16, outputs: 5),  // rows of 4 tiles with a lane between: three to a vector
        Case(channels: 10, height: 17, width: 12, outputs: 9),  // rows of 3 tiles with a lane between: four to a vector
        Case(channels: 13, height: 9, width: 11, outputs: 4),  // fewer outputs than one 8-row tile
        Case(channels: 20, height: 7, width: 7, outputs: 19),  // a partial last tile of outputs
        Case(channels: 7, height: 1, width: 1, outputs: 8),  // one pixel: every tap but the centre reads padding
        Case(channels: 5, height: 6, width: 150, outputs: 9),  // 38 tiles a row: panels split rows
        Case(channels: 300, height: 5, width: 6, outputs: 10),  // many channels
        Case(channels: 3, height: 33, width: 2, outputs: 33),  // narrow and tall, 33 outputs
    ]

    /// The direct 3x3 "same" convolution in double precision.
    static func exact(_ image: [Float], _ layerCase: Case, _ weight: [Float], _ bias: [Float]) -> [Double] {
        var result = [Double](repeating: 0, count: layerCase.outputs * layerCase.height * layerCase.width)
        for o in 0..<layerCase.outputs {
            for oy in 0..<layerCase.height {
                for ox in 0..<layerCase.width {
                    var sum = Double(bias[o])
                    for c in 0..<layerCase.channels {
                        for ky in 0..<3 where (0..<layerCase.height).contains(oy + ky - 1) {
                            for kx in 0..<3 where (0..<layerCase.width).contains(ox + kx - 1) {
                                sum +=
                                    Double(weight[((o * layerCase.channels + c) * 3 + ky) * 3 + kx])
                                    * Double(
                                        image[(c * layerCase.height + oy + ky - 1) * layerCase.width + ox + kx - 1])
                            }
                        }
                    }
                    result[(o * layerCase.height + oy) * layerCase.width + ox] = sum
                }
            }
        }
        return result
    }

    /// The largest difference from `exact` over its largest magnitude; infinite where `y` holds a
    /// value that is not finite (which `max` would pass over).
    static func error(_ result: [Float], _ exact: [Double]) -> Double {
        guard result.allSatisfy(\.isFinite) else { return .infinity }
        let worst = zip(result, exact).map { abs(Double($0) - $1) }.max() ?? 0
        return worst / max(exact.map(abs).max() ?? 0, .leastNormalMagnitude)
    }

    @Test(arguments: cases)
    func matchesDirectConvolution(_ layerCase: Case) {
        var rng = SeededRandom(
            UInt64(layerCase.channels * 31 + layerCase.height * 7 + layerCase.width * 3 + layerCase.outputs))
        let image = rng.floats(layerCase.channels * layerCase.height * layerCase.width)
        let weight = rng.floats(layerCase.outputs * layerCase.channels * 9)
        let bias = rng.floats(layerCase.outputs)
        let exact = Self.exact(image, layerCase, weight, bias)
        let transform = WinogradTransform.f4
        let weights = weight.withUnsafeBufferPointer {
            WinogradWeights($0, outChannels: layerCase.outputs, inChannels: layerCase.channels, transform: transform)
        }
        // Images 5 floats apart, NaN in the gaps; output planes with 7 NaN before and after each image.
        let (inStride, outStride, gap) = (
            layerCase.height * layerCase.width + 5, layerCase.height * layerCase.width + 14, 7
        )
        var input = [Float](repeating: .nan, count: layerCase.channels * inStride)
        for c in 0..<layerCase.channels {
            for i in 0..<(layerCase.height * layerCase.width) {
                input[c * inStride + i] = image[c * layerCase.height * layerCase.width + i]
            }
        }
        let scratch = (0..<2).map { _ in
            WinogradConvolution.Scratch(transform, inChannels: layerCase.channels, outChannels: layerCase.outputs)
        }
        // The scratch buffers as a layer before leaves them: full of another map's rows (NaN here),
        // none of which may reach this one's outputs.
        let (wide, nan) = (64, [Float](repeating: .nan, count: layerCase.channels * 6 * 64))
        var ignored = [Float](repeating: 0, count: layerCase.outputs * 6 * wide)
        nan.withUnsafeBufferPointer { ip in
            ignored.withUnsafeMutableBufferPointer {
                WinogradConvolution.run(
                    weights, ip.baseAddress!, inputStride: 6 * wide, height: 6, width: wide,
                    into: $0.baseAddress!, outputStride: 6 * wide, bias: nil, scratch: scratch, threads: 2)
            }
        }
        // Also as the executor's planes: a margin of w + 1 floats before and after each image that
        // may be read (NaN here: every value read there must go unused).
        let margin = layerCase.width + 1
        let marginStride = layerCase.height * layerCase.width + 2 * margin
        var bordered = [Float](repeating: .nan, count: layerCase.channels * marginStride)
        for c in 0..<layerCase.channels {
            for i in 0..<(layerCase.height * layerCase.width) {
                bordered[c * marginStride + margin + i] = image[c * layerCase.height * layerCase.width + i]
            }
        }
        for (threads, margined) in [(1, false), (2, false), (1, true), (2, true)] {
            var out = [Float](repeating: .nan, count: layerCase.outputs * outStride)
            (margined ? bordered : input).withUnsafeBufferPointer { ip in
                bias.withUnsafeBufferPointer { bp in
                    out.withUnsafeMutableBufferPointer {
                        WinogradConvolution.run(
                            weights, ip.baseAddress! + (margined ? margin : 0),
                            inputStride: margined ? marginStride : inStride,
                            height: layerCase.height, width: layerCase.width, into: $0.baseAddress! + gap,
                            outputStride: outStride,
                            bias: bp.baseAddress!, scratch: scratch, threads: threads,
                            inputMargin: margined ? margin : 0)
                    }
                }
            }
            var result: [Float] = []
            for o in 0..<layerCase.outputs {
                let plane = out[(o * outStride)..<((o + 1) * outStride)]
                #expect(
                    plane.prefix(gap).allSatisfy(\.isNaN) && plane.suffix(gap).allSatisfy(\.isNaN),
                    "\(layerCase): wrote outside output \(o)'s image")
                result += plane.dropFirst(gap).prefix(layerCase.height * layerCase.width)
            }
            // The transforms' coefficients (up to 8 and 1/24) cost about one digit more than the
            // direct float32 sum loses.
            let largestError = Self.error(result, exact)
            #expect(largestError < 2e-5, "\(layerCase) threads \(threads) margin \(margined): error \(largestError)")
            if threads == 1 && !margined {
                print("measured: F(4x4) \(layerCase): \(largestError) of the largest output")
            }
        }
    }

    /// The transforms themselves: F(4x4, 3x3) of a single 1 at each input position of one tile
    /// gives the filter flipped into place, which pins every coefficient (a wrong one moves outputs by
    /// far more than rounding).
    @Test func impulseResponsesAreTheFilter() {
        let outputSide = 4
        let layerCase = Case(channels: 1, height: outputSide, width: outputSide, outputs: 1)
        let weight: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9]
        let weights = weight.withUnsafeBufferPointer {
            WinogradWeights($0, outChannels: 1, inChannels: 1, transform: .f4)
        }
        let scratch = [WinogradConvolution.Scratch(.f4, inChannels: 1, outChannels: 1)]
        for p in 0..<(outputSide * outputSide) {
            var image = [Float](repeating: 0, count: outputSide * outputSide)
            image[p] = 1
            var result = [Float](repeating: .nan, count: outputSide * outputSide)
            image.withUnsafeBufferPointer { xp in
                result.withUnsafeMutableBufferPointer {
                    WinogradConvolution.run(
                        weights, xp.baseAddress!, inputStride: outputSide * outputSide, height: outputSide,
                        width: outputSide,
                        into: $0.baseAddress!, outputStride: outputSide * outputSide, bias: nil, scratch: scratch,
                        threads: 1)
                }
            }
            let want = Self.exact(image, layerCase, weight, [0])
            #expect(
                zip(result, want).allSatisfy { abs(Double($0) - $1) < 1e-4 }, "impulse at \(p): \(result) vs \(want)")
        }
    }

    /// Rows of tiles packed into a vector with no lane between them: a row's last tile reads the next
    /// tile row's first columns in place of the padding past the image, which must reach none of its
    /// outputs inside the image. The first column of every image row is huge and the rest zero: the
    /// last tiles' outputs (columns 12 and 13 of 14) are then exactly zero, where any of it leaking
    /// in would leave its rounding (about 1e23) in them.
    @Test func rowEndsSeeZeroPastTheImage() {
        let (height, width) = (14, 14)
        let weights = [Float](repeating: 1, count: 9).withUnsafeBufferPointer {
            WinogradWeights($0, outChannels: 1, inChannels: 1, transform: .f4)
        }
        let scratch = [WinogradConvolution.Scratch(.f4, inChannels: 1, outChannels: 1)]
        var image = [Float](repeating: 0, count: height * width)
        for r in 0..<height { image[r * width] = 1e30 }
        var result = [Float](repeating: .nan, count: height * width)
        image.withUnsafeBufferPointer { xp in
            result.withUnsafeMutableBufferPointer {
                WinogradConvolution.run(
                    weights, xp.baseAddress!, inputStride: height * width, height: height, width: width,
                    into: $0.baseAddress!, outputStride: height * width, bias: nil, scratch: scratch, threads: 1)
            }
        }
        for r in 0..<height {
            #expect(
                result[r * width + 12] == 0 && result[r * width + 13] == 0,
                "row \(r): \(result[(r * width + 10)..<(r * width + 14)])")
            // Columns 0 and 1 sum the huge column over the rows the filter covers.
            let rows = Float((max(0, r - 1)...min(height - 1, r + 1)).count)
            #expect(
                abs(result[r * width] / (rows * 1e30) - 1) < 1e-5
                    && abs(result[r * width + 1] / (rows * 1e30) - 1) < 1e-5, "row \(r)")
        }
    }
}

/// The transformed filters against the plain computation, bit for bit: U = G g G^T for each
/// (output, input) pair in double precision with G of F(4x4, 3x3) (Lavin and Gray), rounded once to
/// float, at position p of output o and input i in the GEMM's packing [p][o / 8][i][o % 8]; outputs
/// past the last one in their 8-row tile zero.
@Suite struct WinogradWeightsTests {
    static let matrixG: [[Double]] = [
        [1.0 / 4, 0, 0], [-1.0 / 6, -1.0 / 6, -1.0 / 6], [-1.0 / 6, 1.0 / 6, -1.0 / 6],
        [1.0 / 24, 1.0 / 12, 1.0 / 6], [1.0 / 24, -1.0 / 12, 1.0 / 6], [0, 0, 1],
    ]

    @Test(arguments: [(outputs: 32, inputs: 128), (outputs: 13, inputs: 5), (outputs: 3, inputs: 1)])
    func matchesThePlainTransform(_ shape: (outputs: Int, inputs: Int)) {
        var random = SeededRandom(42)
        let weight = random.floats(shape.outputs * shape.inputs * 9, -2...2)
        let packed = weight.withUnsafeBufferPointer {
            WinogradWeights($0, outChannels: shape.outputs, inChannels: shape.inputs, transform: .f4)
        }
        let tiles = (shape.outputs + 7) / 8
        var expected = [Float](repeating: 0, count: 36 * tiles * shape.inputs * 8)
        for output in 0..<shape.outputs {
            for input in 0..<shape.inputs {
                let filter = (0..<9).map { Double(weight[(output * shape.inputs + input) * 9 + $0]) }
                let matrixG = Self.matrixG
                var rows = [[Double]](repeating: [0, 0, 0], count: 6)
                for r in 0..<6 {
                    for c in 0..<3 {
                        let first: Double = matrixG[r][0] * filter[c] + matrixG[r][1] * filter[3 + c]
                        rows[r][c] = first + matrixG[r][2] * filter[6 + c]
                    }
                }
                for r in 0..<6 {
                    for c in 0..<6 {
                        let first: Double = rows[r][0] * matrixG[c][0] + rows[r][1] * matrixG[c][1]
                        let product = first + rows[r][2] * matrixG[c][2]
                        expected[(((r * 6 + c) * tiles + output / 8) * shape.inputs + input) * 8 + output % 8] = Float(
                            product)
                    }
                }
            }
        }
        #expect(packed.storage.array.map(\.bitPattern) == expected.map(\.bitPattern))
    }
}
