import DenseKitKernels
import TestSupport
import Testing

/// The phase-plane convolution (split, one segmented GEMM, compact) against the direct reference.
@Suite struct PhaseConvolutionTests {
    struct Case: Sendable, CustomStringConvertible {
        var channels: Int, height: Int, width: Int, outputs: Int, kernel: Int, stride: Int, pads: [Int]
        var description: String { "c\(channels) \(height)x\(width) o\(outputs) k\(kernel)/\(stride) pads \(pads)" }
    }

    static let cases = [
        // a DenseNet stem, odd sizes
        Case(channels: 3, height: 17, width: 23, outputs: 5, kernel: 7, stride: 2, pads: [3, 3, 3, 3]),
        Case(channels: 3, height: 32, width: 32, outputs: 64, kernel: 7, stride: 2, pads: [3, 3, 3, 3]),
        Case(channels: 13, height: 9, width: 11, outputs: 4, kernel: 3, stride: 1, pads: [1, 1, 1, 1]),
        Case(channels: 20, height: 7, width: 7, outputs: 19, kernel: 3, stride: 1, pads: [1, 1, 1, 1]),
        // channels across K blocks
        Case(channels: 300, height: 6, width: 5, outputs: 9, kernel: 3, stride: 1, pads: [1, 1, 1, 1]),
        Case(channels: 3, height: 5, width: 6, outputs: 2, kernel: 5, stride: 1, pads: [2, 2, 2, 2]),
        Case(channels: 2, height: 10, width: 9, outputs: 3, kernel: 3, stride: 2, pads: [0, 0, 0, 0]),
        // asymmetric pads, stride 3
        Case(channels: 4, height: 11, width: 10, outputs: 6, kernel: 3, stride: 3, pads: [1, 0, 2, 1]),
        // kernel smaller than stride
        Case(channels: 5, height: 8, width: 7, outputs: 3, kernel: 1, stride: 2, pads: [0, 0, 0, 0]),
        Case(channels: 6, height: 9, width: 8, outputs: 33, kernel: 4, stride: 2, pads: [1, 2, 2, 1]),  // even kernel
    ]

    @Test(arguments: cases)
    func matchesDirectConvolution(_ layerCase: Case) {
        var rng = SeededRandom(UInt64(layerCase.channels * 31 + layerCase.height * 7 + layerCase.outputs))
        let image = rng.floats(layerCase.channels * layerCase.height * layerCase.width)
        let weight = rng.floats(layerCase.outputs * layerCase.channels * layerCase.kernel * layerCase.kernel)
        let bias = rng.floats(layerCase.outputs)
        let want = Reference.conv(
            image, channels: layerCase.channels, height: layerCase.height, width: layerCase.width, weight: weight,
            outChannels: layerCase.outputs,
            kernel: layerCase.kernel, stride: layerCase.stride, pads: layerCase.pads, bias: bias)
        let phases = PhaseConvolution(
            channels: layerCase.channels, height: layerCase.height, width: layerCase.width, kernel: layerCase.kernel,
            stride: layerCase.stride, pads: layerCase.pads)
        #expect(phases.outHeight == want.height && phases.outWidth == want.width)
        var planes = [Float](repeating: .nan, count: phases.inputCount)
        var grid = [Float](repeating: .nan, count: layerCase.outputs * phases.gridCount)
        var result = [Float](repeating: .nan, count: layerCase.outputs * phases.outHeight * phases.outWidth)
        let packed = weight.withUnsafeBufferPointer {
            PackedMatrix(
                convolution: $0, outChannels: layerCase.outputs, inChannels: layerCase.channels,
                kernel: layerCase.kernel, rows: .outputs)
        }
        image.withUnsafeBufferPointer { xp in
            planes.withUnsafeMutableBufferPointer {
                // Split in two channel ranges, as the executor's threads do.
                phases.split(xp.baseAddress!, channels: 0..<(layerCase.channels / 2), into: $0.baseAddress!)
                phases.split(
                    xp.baseAddress!, channels: (layerCase.channels / 2)..<layerCase.channels, into: $0.baseAddress!)
                phases.zeroSlack($0.baseAddress!)
            }
        }
        planes.withUnsafeBufferPointer { pp in
            let segments = phases.segments(pp.baseAddress!)
            bias.withUnsafeBufferPointer { bp in
                grid.withUnsafeMutableBufferPointer {
                    GEMM.multiply(
                        packed, segments, n: phases.gridCount, $0.baseAddress!, ldc: phases.gridCount,
                        bias: bp.baseAddress!,
                        threads: 2)
                }
            }
        }
        grid.withUnsafeBufferPointer { gp in
            result.withUnsafeMutableBufferPointer {
                phases.compact(gp.baseAddress!, channels: 0..<layerCase.outputs, into: $0.baseAddress!)
            }
        }
        #expect(relativeError(result, want.values) < 1e-5, "\(layerCase)")
    }
}

/// The shifted convolution (every tap's tiles added into the output at the tap's shift) against the
/// direct reference, on `PlaneLayout` maps whose border cells hold NaN: they must not be read, the
/// output planes must be fully overwritten, and nothing outside them touched.
@Suite struct ShiftedConvolutionTests {
    struct Case: Sendable, CustomStringConvertible {
        var channels: Int, height: Int, width: Int, outputs: Int, kernel: Int
        var description: String { "c\(channels) \(height)x\(width) o\(outputs) k\(kernel)" }
    }

    static let cases = [
        Case(channels: 128, height: 14, width: 14, outputs: 32, kernel: 3),  // a DenseNet-121 block-3 layer
        Case(channels: 13, height: 9, width: 11, outputs: 4, kernel: 3),  // fewer outputs than one 8-row block
        Case(channels: 20, height: 7, width: 7, outputs: 19, kernel: 3),  // a partial last block of outputs
        Case(channels: 300, height: 6, width: 5, outputs: 9, kernel: 3),  // channels across K blocks
        Case(channels: 3, height: 5, width: 6, outputs: 2, kernel: 5),  // border 2
        Case(channels: 16, height: 3, width: 40, outputs: 33, kernel: 3),  // rows wider than a panel
        Case(channels: 5, height: 4, width: 1, outputs: 8, kernel: 5),  // rows narrower than the kernel's reach
        // a 1x1 image: every tap but the centre reads padding
        Case(channels: 7, height: 1, width: 1, outputs: 8, kernel: 3),
    ]

    @Test(arguments: cases)
    func matchesDirectConvolution(_ layerCase: Case) {
        var rng = SeededRandom(UInt64(layerCase.channels * 131 + layerCase.height * 17 + layerCase.outputs))
        var image = rng.floats(layerCase.channels * layerCase.height * layerCase.width)
        let weight = rng.floats(layerCase.outputs * layerCase.channels * layerCase.kernel * layerCase.kernel)
        let bias = rng.floats(layerCase.outputs)
        // Channels of +0, as a ReLU leaves them: the GEMM leaves their rows out of its K loop.
        for ch in stride(from: 1, to: layerCase.channels, by: 4) {
            for i in 0..<(layerCase.height * layerCase.width) { image[ch * layerCase.height * layerCase.width + i] = 0 }
        }
        let layout = PlaneLayout(height: layerCase.height, width: layerCase.width, border: layerCase.kernel / 2)
        var planes = [Float](repeating: .nan, count: layerCase.channels * layout.plane)
        image.withUnsafeBufferPointer { xp in
            planes.withUnsafeMutableBufferPointer {
                layout.unpack(xp.baseAddress!, channels: 0..<layerCase.channels, into: $0.baseAddress!)
            }
        }
        // The same input panel-major (as a bottleneck writes it), NaN past the image in the last panel.
        let panels = (layerCase.height * layerCase.width + 31) / 32
        var panelled = [Float](repeating: .nan, count: panels * layerCase.channels * 32)
        for ch in 0..<layerCase.channels {
            for j in 0..<(layerCase.height * layerCase.width) {
                panelled[(j / 32) * layerCase.channels * 32 + ch * 32 + j % 32] =
                    image[ch * layerCase.height * layerCase.width + j]
            }
        }
        let packed = weight.withUnsafeBufferPointer {
            PackedMatrix(
                convolution: $0, outChannels: layerCase.outputs, inChannels: layerCase.channels,
                kernel: layerCase.kernel, rows: .outputTaps)
        }
        for (threads, withBias, panelMajor) in [
            (1, true, false), (2, true, false), (2, false, false), (1, true, true), (2, false, true),
        ] {
            let want = Reference.conv(
                image, channels: layerCase.channels, height: layerCase.height, width: layerCase.width, weight: weight,
                outChannels: layerCase.outputs, kernel: layerCase.kernel,
                stride: 1, pads: [Int](repeating: layerCase.kernel / 2, count: 4), bias: withBias ? bias : nil)
            // The output planes between two guard zones that must keep their values.
            let guardCount = 2 * layout.plane + 64
            var out = [Float](repeating: .nan, count: guardCount + layerCase.outputs * layout.plane + guardCount)
            for i in 0..<guardCount { (out[i], out[out.count - 1 - i]) = (-3, -3) }
            var result = [Float](repeating: .nan, count: layerCase.outputs * layerCase.height * layerCase.width)
            (panelMajor ? panelled : planes).withUnsafeBufferPointer { pp in
                bias.withUnsafeBufferPointer { bp in
                    out.withUnsafeMutableBufferPointer {
                        let planes = $0.baseAddress! + guardCount
                        let input =
                            panelMajor
                            ? GEMM.segments(
                                pp.baseAddress!, ldb: 32, k: layerCase.channels, panelStride: layerCase.channels * 32)
                            : GEMM.segments(pp.baseAddress! + layout.interior, ldb: layout.plane, k: layerCase.channels)
                        ShiftedConvolution.run(
                            packed, outChannels: layerCase.outputs, kernel: layerCase.kernel, input, layout: layout,
                            into: planes, bias: withBias ? bp.baseAddress! : nil, threads: threads)
                        result.withUnsafeMutableBufferPointer {
                            layout.pack(planes, channels: 0..<layerCase.outputs, into: $0.baseAddress!)
                        }
                    }
                }
            }
            #expect(
                relativeError(result, want.values) < 1e-5,
                "\(layerCase) threads \(threads) bias \(withBias) panel-major \(panelMajor)")
            #expect(
                out[..<guardCount].allSatisfy { $0 == -3 } && out[(out.count - guardCount)...].allSatisfy { $0 == -3 },
                "\(layerCase)")
            #expect(
                out[guardCount..<(out.count - guardCount)].allSatisfy { !$0.isNaN },
                "\(layerCase): output cells left unwritten"
            )
        }
    }
}
