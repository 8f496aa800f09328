import DenseKitGraph

/// onnxruntime's integer arithmetic on the CPU (MLAS), value for value:
/// - QuantizeLinear divides by the scale (not a multiplication by its inverse), rounds to nearest even,
///   adds the zero point and saturates;
/// - QLinearConv and QGemm requantise the int32 accumulator (bias included) with one float multiplier per
///   output channel, input scale x weight scale / output scale, then round and saturate the same way;
/// - QLinearConcat requantises each input whose parameters differ from the output's by dequantising and
///   quantising again; QLinearAveragePool sums codes less the zero point in int32, scales the sum and rounds it
///   with the output zero point already added;
/// - QLinearGlobalAveragePool sums codes in int32, less zero point x count, and requantises with input
///   scale / (output scale x count);
/// - BatchNormalization (float) scales by (1 / sqrt(var + eps)) x gamma and shifts by beta - mean x scale;
/// - QLinearMul and QLinearAdd of a constant as `multiply` and `add` say (their x86 kernels; checked against
///   onnxruntime 1.32 on every code of 8,000 random parameter sets, the constant first and second).
package enum OnnxruntimeArithmetic {
    /// `value` as a code of `q` (per tensor): the real value / scale, rounded to nearest even, saturated.
    static func quantize(_ value: Float, scale: Float, zeroPoint: Int32, range: ClosedRange<Int32>) -> Int32 {
        saturate(value / scale, zeroPoint: zeroPoint, range: range)
    }

    /// `scaled` (a value already in units of the output scale) rounded to nearest even, plus the zero point,
    /// saturated to `range`: MLAS clamps in float before rounding, which gives the same codes.
    @inline(__always)
    package static func saturate(_ scaled: Float, zeroPoint: Int32, range: ClosedRange<Int32>) -> Int32 {
        let low = Float(range.lowerBound - zeroPoint)
        let high = Float(range.upperBound - zeroPoint)
        // A NaN (from a NaN weight) becomes the zero point, as no code stands for it.
        let clamped = scaled.isNaN ? 0 : min(max(scaled, low), high)
        return Int32(clamped.rounded(.toNearestOrEven)) + zeroPoint
    }

    /// `saturate` on 8 values at once, lane for lane the same codes (`Saturation`).
    package static func saturate(_ scaled: SIMD8<Float>, zeroPoint: Int32, range: ClosedRange<Int32>) -> SIMD8<Int32> {
        Saturation(zeroPoint: zeroPoint, range: range)(scaled)
    }

    /// `saturate` on 8 values at once, its bounds made once for a loop over values of one quantisation. The clamped
    /// value (at most 2^9 in magnitude) plus 1.5 x 2^23 is rounded to nearest even by the addition itself, into the
    /// low bits of a float whose exponent makes its unit 1: those bits less the constant's are the rounded integer.
    /// (The standard library's SIMD conversion to integers and its clamp run lane by lane through generic code, 5
    /// times slower.) Inlined by force (`@_transparent`, as `GEMM.tile`): the optimizer left it a call per vector
    /// despite `@inline(__always)`, 8% of an int8 run.
    package struct Saturation {
        let low: SIMD8<Float>
        let high: SIMD8<Float>
        let zeroPoint: SIMD8<Int32>

        package init(zeroPoint: Int32, range: ClosedRange<Int32>) {
            low = SIMD8(repeating: Float(range.lowerBound - zeroPoint))
            high = SIMD8(repeating: Float(range.upperBound - zeroPoint))
            self.zeroPoint = SIMD8(repeating: zeroPoint)
        }

        @_transparent
        package func callAsFunction(_ scaled: SIMD8<Float>) -> SIMD8<Int32> {
            var clamped = scaled.replacing(with: low, where: scaled .< low)
            clamped.replace(with: high, where: clamped .> high)
            clamped.replace(with: 0, where: scaled .!= scaled)
            let rounded = unsafeBitCast(clamped + SIMD8(repeating: 0x1.8p23), to: SIMD8<Int32>.self)
            return rounded &- 0x4B40_0000 &+ zeroPoint
        }
    }

    /// `scaled` plus the zero point, rounded to nearest even and saturated: QLinearAveragePool's order, which adds
    /// the zero point before it rounds.
    @inline(__always)
    static func roundingWithZeroPoint(_ scaled: Float, zeroPoint: Int32, range: ClosedRange<Int32>) -> Int32 {
        let shifted = scaled + Float(zeroPoint)
        guard !shifted.isNaN else { return zeroPoint }
        let clamped = min(max(shifted, Float(range.lowerBound)), Float(range.upperBound))
        return Int32(clamped.rounded(.toNearestOrEven))
    }

    /// The real value of a code.
    @inline(__always)
    static func dequantize(_ code: Int32, scale: Float, zeroPoint: Int32) -> Float {
        Float(code &- zeroPoint) * scale
    }

    /// The requantisation multiplier of output channel `channel`: input scale x weight scale / output scale.
    static func multiplier(input: Quantization, weight: Quantization, output: Quantization, channel: Int) -> Float {
        input.scales[0] * weight.scale(channel) / output.scales[0]
    }

    /// A BatchNormalization's per-channel factor and shift as onnxruntime's kernel computes them.
    static func batchNormAffine(_ norm: BatchNorm) -> (scale: [Float], shift: [Float]) {
        let (gamma, beta, mean, variance) = (
            norm.gamma.values, norm.beta.values, norm.mean.values, norm.variance.values
        )
        var scale = [Float](repeating: 0, count: norm.channels)
        var shift = [Float](repeating: 0, count: norm.channels)
        for c in 0..<norm.channels {
            let inverse = 1 / (variance[c] + norm.epsilon).squareRoot()
            scale[c] = inverse * gamma[c]
            shift[c] = beta[c] - mean[c] * scale[c]
        }
        return (scale, shift)
    }

    /// QLinearMul of the code `x` (of `xq`) by the constant code `k` (of `kq`), to a code of `yq`: the codes less
    /// their zero points multiplied in int32, the product times (x scale x k scale) / y scale in float, plus the
    /// zero point, rounded to nearest even and saturated.
    static func multiply(_ x: Int32, _ xq: Quantization, by k: Int32, _ kq: Quantization, to yq: Quantization) -> Int32
    {
        let product = (x &- xq.zeroPoints[0]) &* (k &- kq.zeroPoints[0])
        let ratio = xq.scales[0] * kq.scales[0] / yq.scales[0]
        return roundingWithZeroPoint(Float(product) * ratio, zeroPoint: yq.zeroPoints[0], range: yq.storage.range)
    }

    /// QLinearAdd of the constant code `k` (of `kq`) to the code `x` (of `xq`), to a code of `yq`, in the AVX2
    /// kernel's float operations: with rx = x scale / y scale and rk = k scale / y scale, the fixed part
    /// y zero point - fma(rx, x zero point, rk x k zero point), then fma(k, rk, fixed), then fma(x, rx, that),
    /// rounded to nearest even and saturated. (Which product the compiler fused was found by trying each.)
    static func add(_ x: Int32, _ xq: Quantization, _ k: Int32, _ kq: Quantization, to yq: Quantization) -> Int32 {
        let rx = xq.scales[0] / yq.scales[0]
        let rk = kq.scales[0] / yq.scales[0]
        let zeroPoints = (rk * Float(kq.zeroPoints[0])).addingProduct(rx, Float(xq.zeroPoints[0]))
        let fixed = (Float(yq.zeroPoints[0]) - zeroPoints).addingProduct(Float(k), rk)
        return roundingWithZeroPoint(fixed.addingProduct(Float(x), rx), zeroPoint: 0, range: yq.storage.range)
    }
}
