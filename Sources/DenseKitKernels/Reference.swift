import Foundation

/// Plain reference kernels, written for clarity: the ground truth the SIMD kernels are tested against.
/// All activations are CHW (one image), conv weights OIHW.
public enum Reference {
    /// Direct convolution with zero padding [top, left, bottom, right].
    public static func conv(
        _ x: [Float], channels: Int, height: Int, width: Int, weight: [Float], outChannels: Int,
        kernel: Int, stride: Int, pads: [Int], bias: [Float]?
    ) -> (values: [Float], height: Int, width: Int) {
        let oh = (height + pads[0] + pads[2] - kernel) / stride + 1
        let ow = (width + pads[1] + pads[3] - kernel) / stride + 1
        var y = [Float](repeating: 0, count: outChannels * oh * ow)
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
                                    * x[(c * height + iy) * width + ix]
                            }
                        }
                    }
                    y[(o * oh + oy) * ow + ox] = sum
                }
            }
        }
        return (y, oh, ow)
    }

    /// Inference batch norm per channel.
    public static func batchNorm(
        _ x: [Float], channels: Int, gamma: [Float], beta: [Float], mean: [Float],
        variance: [Float], epsilon: Float
    ) -> [Float] {
        let size = x.count / channels
        var y = x
        for c in 0..<channels {
            let inv = 1 / (variance[c] + epsilon).squareRoot()
            for i in 0..<size { y[c * size + i] = (x[c * size + i] - mean[c]) * inv * gamma[c] + beta[c] }
        }
        return y
    }

    /// NaN stays NaN, as in torch.
    public static func relu(_ x: [Float]) -> [Float] { x.map { DenseKitKernels.relu($0) } }

    /// Max or average pooling; average excludes padding unless `countIncludePad`.
    public static func pool(
        _ x: [Float], channels: Int, height: Int, width: Int, max isMax: Bool, kernel: Int,
        stride: Int, pads: [Int], countIncludePad: Bool
    ) -> (values: [Float], height: Int, width: Int) {
        let oh = (height + pads[0] + pads[2] - kernel) / stride + 1
        let ow = (width + pads[1] + pads[3] - kernel) / stride + 1
        var y = [Float](repeating: 0, count: channels * oh * ow)
        for c in 0..<channels {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var acc: Float = isMax ? -.infinity : 0
                    var n = 0
                    for ky in 0..<kernel {
                        for kx in 0..<kernel {
                            let iy = oy * stride - pads[0] + ky
                            let ix = ox * stride - pads[1] + kx
                            guard iy >= 0, iy < height, ix >= 0, ix < width else { continue }
                            let v = x[(c * height + iy) * width + ix]
                            acc = isMax ? maximum(acc, v) : acc + v
                            n += 1
                        }
                    }
                    y[(c * oh + oy) * ow + ox] = isMax ? acc : acc / Float(countIncludePad ? kernel * kernel : n)
                }
            }
        }
        return (y, oh, ow)
    }

    public static func globalAveragePool(_ x: [Float], channels: Int) -> [Float] {
        let size = x.count / channels
        return (0..<channels).map { c in x[(c * size)..<((c + 1) * size)].reduce(0, +) / Float(size) }
    }

    public static func globalMaxPool(_ x: [Float], channels: Int) -> [Float] {
        let size = x.count / channels
        return (0..<channels).map { c in x[(c * size)..<((c + 1) * size)].reduce(-.infinity, maximum) }
    }

    /// y = W x + b with W (out, in).
    public static func linear(_ x: [Float], weight: [Float], bias: [Float]?, outFeatures: Int) -> [Float] {
        let n = x.count
        return (0..<outFeatures).map { o in
            var s: Float = bias?[o] ?? 0
            for i in 0..<n { s += weight[o * n + i] * x[i] }
            return s
        }
    }

    public static func softmax(_ x: [Float]) -> [Float] {
        let m = x.max() ?? 0
        let e = x.map { Float(exp(Double($0 - m))) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    /// C = A B for row-major A (m x k) and B (k x n).
    public static func matmul(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0
                for p in 0..<k { s += a[i * k + p] * b[p * n + j] }
                c[i * n + j] = s
            }
        }
        return c
    }
}
