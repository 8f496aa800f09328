import Foundation

/// Plain reference kernels, written for clarity: the ground truth the SIMD kernels are tested against.
/// All activations are CHW (one image), conv weights OIHW.
public enum Reference {
    /// Direct convolution with zero padding [top, left, bottom, right].
    public static func conv(
        _ input: [Float], channels: Int, height: Int, width: Int, weight: [Float], outChannels: Int,
        kernel: Int, stride: Int, pads: [Int], bias: [Float]?
    ) -> (values: [Float], height: Int, width: Int) {
        let oh = (height + pads[0] + pads[2] - kernel) / stride + 1
        let ow = (width + pads[1] + pads[3] - kernel) / stride + 1
        var output = [Float](repeating: 0, count: outChannels * oh * ow)
        for o in 0..<outChannels {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var sum: Float = bias?[o] ?? 0
                    for c in 0..<channels {
                        for ky in 0..<kernel {
                            let iy = oy * stride - pads[0] + ky
                            if iy < 0 || iy >= height { continue }
                            for kx in 0..<kernel {
                                let ix = ox * stride - pads[1] + kx
                                if ix < 0 || ix >= width { continue }
                                sum +=
                                    weight[((o * channels + c) * kernel + ky) * kernel + kx]
                                    * input[(c * height + iy) * width + ix]
                            }
                        }
                    }
                    output[(o * oh + oy) * ow + ox] = sum
                }
            }
        }
        return (output, oh, ow)
    }

    /// Inference batch norm per channel.
    public static func batchNorm(
        _ input: [Float], channels: Int, gamma: [Float], beta: [Float], mean: [Float],
        variance: [Float], epsilon: Float
    ) -> [Float] {
        let size = input.count / channels
        var output = input
        for c in 0..<channels {
            let inv = 1 / (variance[c] + epsilon).squareRoot()
            for i in 0..<size { output[c * size + i] = (input[c * size + i] - mean[c]) * inv * gamma[c] + beta[c] }
        }
        return output
    }

    /// NaN stays NaN, as in torch.
    public static func relu(_ input: [Float]) -> [Float] { input.map { DenseKitKernels.relu($0) } }

    /// Max or average pooling; average excludes padding unless `countIncludePad`.
    public static func pool(
        _ input: [Float], channels: Int, height: Int, width: Int, max isMax: Bool, kernel: Int,
        stride: Int, pads: [Int], countIncludePad: Bool
    ) -> (values: [Float], height: Int, width: Int) {
        let oh = (height + pads[0] + pads[2] - kernel) / stride + 1
        let ow = (width + pads[1] + pads[3] - kernel) / stride + 1
        var output = [Float](repeating: 0, count: channels * oh * ow)
        for c in 0..<channels {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var acc: Float = isMax ? -.infinity : 0
                    var counted = 0
                    for ky in 0..<kernel {
                        for kx in 0..<kernel {
                            let iy = oy * stride - pads[0] + ky
                            let ix = ox * stride - pads[1] + kx
                            guard iy >= 0, iy < height, ix >= 0, ix < width else { continue }
                            let value = input[(c * height + iy) * width + ix]
                            acc = isMax ? maximum(acc, value) : acc + value
                            counted += 1
                        }
                    }
                    output[(c * oh + oy) * ow + ox] =
                        isMax ? acc : acc / Float(countIncludePad ? kernel * kernel : counted)
                }
            }
        }
        return (output, oh, ow)
    }

    public static func globalAveragePool(_ input: [Float], channels: Int) -> [Float] {
        let size = input.count / channels
        return (0..<channels).map { c in input[(c * size)..<((c + 1) * size)].reduce(0, +) / Float(size) }
    }

    public static func globalMaxPool(_ input: [Float], channels: Int) -> [Float] {
        let size = input.count / channels
        return (0..<channels).map { c in input[(c * size)..<((c + 1) * size)].reduce(-.infinity, maximum) }
    }

    /// y = W x + b with W (out, in).
    public static func linear(_ input: [Float], weight: [Float], bias: [Float]?, outFeatures: Int) -> [Float] {
        let inFeatures = input.count
        return (0..<outFeatures).map { o in
            var sum: Float = bias?[o] ?? 0
            for i in 0..<inFeatures { sum += weight[o * inFeatures + i] * input[i] }
            return sum
        }
    }

    public static func softmax(_ input: [Float]) -> [Float] {
        let largest = input.max() ?? 0
        let exponentials = input.map { Float(exp(Double($0 - largest))) }
        let total = exponentials.reduce(0, +)
        return exponentials.map { $0 / total }
    }

    /// C = A B for row-major A (m x k) and B (k x n).
    public static func matmul(_ left: [Float], _ right: [Float], m: Int, k: Int, n: Int) -> [Float] {
        var product = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum: Float = 0
                for p in 0..<k { sum += left[i * k + p] * right[p * n + j] }
                product[i * n + j] = sum
            }
        }
        return product
    }
}
