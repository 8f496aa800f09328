import DenseKitGraph

/// TensorFlow Lite's integer arithmetic (its builtin kernels, not the XNNPACK delegate), value for value:
/// - a real multiplier (input scale x weight scale / output scale, in double) is a 32-bit fixed-point multiplier
///   and a power-of-two shift (`QuantizeMultiplier`), applied with gemmlowp's saturating rounding doubling high
///   multiplication and rounding division by a power of two (`MultiplyByQuantizedMultiplier`);
/// - CONV_2D and FULLY_CONNECTED requantise the int32 accumulator (bias included) so, per output channel, with
///   the rounding of its matrix multiplication's output stage (`multiplyInGEMM`);
/// - MUL multiplies the two inputs less their zero points and requantises; ADD brings both inputs to a common
///   scale with 20 bits of headroom, adds, and requantises (a BatchNorm is the converter's MUL then ADD, and so is
///   a Keras Rescaling on a full-integer model's input codes);
/// - AVERAGE_POOL_2D averages raw codes, rounding half away from zero, on one scale for input and output;
///   CONCATENATION copies codes, its inputs and output sharing one scale;
/// - MEAN over H and W sums codes in int32 and rescales with the fixed-point multiplier of input scale / output
///   scale divided by the count;
/// - the hybrid kernels of a dynamic-range model quantise each image's float input to int8 on the fly, asymmetric,
///   from its minimum and maximum, and scale the int32 products back to float.
package enum TFLiteArithmetic {
    /// A real multiplier as a fixed-point value with 31 fractional bits and a power-of-two exponent.
    package struct Multiplier {
        package var fixed: Int32
        package var shift: Int

        /// `QuantizeMultiplier`: `real` = fixed x 2^(shift - 31), fixed in [2^30, 2^31), rounded half away from zero.
        package init(_ real: Double) {
            // Below 2^-32 the shift would pass -31, where TensorFlow Lite takes 0; an infinite multiplier (from
            // scales no converter writes) saturates.
            guard real >= 0x1p-32, real.isFinite else {
                (fixed, shift) = real.isInfinite && real > 0 ? (Int32.max, 31) : (0, 0)
                return
            }
            // real = q x 2^exponent with q in [0.5, 1), as frexp gives.
            var exponent = Int(real.exponent) + 1
            var value = (real.significand / 2 * 0x1p31).rounded(.toNearestOrAwayFromZero)
            if value == 0x1p31 {
                value /= 2
                exponent += 1
            }
            (fixed, shift) = exponent < -31 ? (0, 0) : (Int32(value), min(exponent, 31))
        }
    }

    /// gemmlowp's SaturatingRoundingDoublingHighMul: the high 32 bits of 2ab, rounded half away from zero.
    @inline(__always)
    package static func doublingHighMultiply(_ a: Int32, _ b: Int32) -> Int32 {
        if a == Int32.min && b == Int32.min { return Int32.max }
        let product = Int64(a) * Int64(b)
        let nudge: Int64 = product >= 0 ? 1 << 30 : 1 - (1 << 30)
        return Int32(truncatingIfNeeded: (product + nudge) / (1 << 31))
    }

    /// gemmlowp's RoundingDivideByPOT: x / 2^exponent rounded half away from zero.
    @inline(__always)
    package static func roundingDivide(_ x: Int32, byPowerOfTwo exponent: Int) -> Int32 {
        let mask = Int32(truncatingIfNeeded: (Int64(1) << exponent) - 1)
        let remainder = x & mask
        let threshold = (mask >> 1) &+ (x < 0 ? 1 : 0)
        return (x >> Int32(exponent)) &+ (remainder > threshold ? 1 : 0)
    }

    /// MultiplyByQuantizedMultiplier: x x the multiplier, the left shift before the high multiplication, the right
    /// one after.
    @inline(__always)
    package static func multiply(_ x: Int32, by m: Multiplier) -> Int32 {
        let left = max(m.shift, 0)
        let right = max(-m.shift, 0)
        return roundingDivide(doublingHighMultiply(x &* (1 << Int32(left)), m.fixed), byPowerOfTwo: right)
    }

    /// The same product as `multiply` the way TensorFlow Lite's matrix multiplications (ruy's x86 kernels, under
    /// CONV_2D and FULLY_CONNECTED) apply it: both roundings half up, where gemmlowp's round half away from zero.
    /// The two differ on values at a half below zero (measured: 9 of 5,120 outputs of the tiny fixture's transition
    /// convs, which only this one gives as TensorFlow Lite does).
    @inline(__always)
    package static func multiplyInGEMM(_ x: Int32, by m: Multiplier) -> Int32 {
        let left = max(m.shift, 0)
        let right = max(-m.shift, 0)
        let high = (Int64(x &* (1 << Int32(left))) * Int64(m.fixed) + (1 << 30)) >> 31
        let rounded = right == 0 ? high : (high + (Int64(1) << (right - 1))) >> Int64(right)
        return Int32(truncatingIfNeeded: rounded)
    }

    @inline(__always)
    static func clamp(_ value: Int32, _ range: ClosedRange<Int32>) -> Int32 {
        min(max(value, range.lowerBound), range.upperBound)
    }

    /// The per-output-channel multipliers of a conv or fully connected layer: input scale x weight scale / output
    /// scale, in double.
    static func multipliers(input: Quantization, weight: Quantization, output: Quantization, channels: Int)
        -> [Multiplier]
    {
        (0..<channels).map { c in
            Multiplier(Double(input.scales[0]) * Double(weight.scale(c)) / Double(output.scales[0]))
        }
    }

    /// An int8 MUL: codes `x` of `input` less their zero point times codes of `factor` less theirs, requantised to
    /// `output` with the fixed-point multiplier of input scale x factor scale / output scale.
    struct MultiplyKernel {
        let multiplier: Multiplier
        let inputZero: Int32, factorZero: Int32, outputZero: Int32
        let outputRange: ClosedRange<Int32>

        init(input: Quantization, factor: Quantization, output: Quantization) {
            multiplier = Multiplier(Double(input.scales[0]) * Double(factor.scales[0]) / Double(output.scales[0]))
            (inputZero, factorZero, outputZero) = (input.zeroPoints[0], factor.zeroPoints[0], output.zeroPoints[0])
            outputRange = output.storage.range
        }

        @inline(__always)
        func callAsFunction(_ x: Int32, _ factor: Int32) -> Int32 {
            clamp(outputZero &+ multiply((x &- inputZero) &* (factor &- factorZero), by: multiplier), outputRange)
        }
    }

    /// An int8 ADD (or SUB, `subtracting`): both inputs' codes less their zero points brought to twice the larger
    /// scale with 20 bits of headroom, added (the second subtracted), and requantised to `output`; clamped at the
    /// output's zero point too when a ReLU is fused.
    struct AddKernel {
        let multipliers: (Multiplier, Multiplier), outputMultiplier: Multiplier
        let firstZero: Int32, secondZero: Int32, outputZero: Int32
        let outputRange: ClosedRange<Int32>
        let subtracting: Bool
        static let leftShift: Int32 = 20

        init(
            first: Quantization, second: Quantization, output: Quantization, relu: Bool = false,
            subtracting: Bool = false
        ) {
            self.subtracting = subtracting
            let twiceMax = Double(2 * max(first.scales[0], second.scales[0]))
            multipliers = (
                Multiplier(Double(first.scales[0]) / twiceMax), Multiplier(Double(second.scales[0]) / twiceMax)
            )
            outputMultiplier = Multiplier(twiceMax / Double(Float(1 << Self.leftShift) * output.scales[0]))
            (firstZero, secondZero, outputZero) = (first.zeroPoints[0], second.zeroPoints[0], output.zeroPoints[0])
            let range = output.storage.range
            outputRange = relu ? max(range.lowerBound, output.zeroPoints[0])...range.upperBound : range
        }

        /// MultiplyByQuantizedMultiplierSmallerThanOneExp.
        @inline(__always)
        private static func scaleDown(_ x: Int32, _ m: Multiplier) -> Int32 {
            roundingDivide(doublingHighMultiply(x, m.fixed), byPowerOfTwo: -min(m.shift, 0))
        }

        @inline(__always)
        func callAsFunction(_ first: Int32, _ second: Int32) -> Int32 {
            let a = Self.scaleDown((first &- firstZero) &* (1 << Self.leftShift), multipliers.0)
            let b = Self.scaleDown((second &- secondZero) &* (1 << Self.leftShift), multipliers.1)
            return clamp(Self.scaleDown(subtracting ? a &- b : a &+ b, outputMultiplier) &+ outputZero, outputRange)
        }
    }

    /// An int8 MUL (broadcast by channel) then ADD, the converter's BatchNorm: codes `x` of `input` times the
    /// factor codes of `gamma`, requantised to `product`; plus the offset codes of `beta`, requantised to `output`;
    /// clamped at the output's zero point too when a ReLU follows.
    struct BatchNormKernel {
        let scale: MultiplyKernel
        let shift: AddKernel

        init(
            input: Quantization, gamma: Quantization, product: Quantization, beta: Quantization,
            output: Quantization, relu: Bool
        ) {
            scale = MultiplyKernel(input: input, factor: gamma, output: product)
            shift = AddKernel(first: product, second: beta, output: output, relu: relu)
        }

        @inline(__always)
        func callAsFunction(_ x: Int32, gamma: Int32, beta: Int32) -> Int32 {
            shift(scale(x, gamma), beta)
        }
    }

    /// AVERAGE_POOL_2D of int8 codes: the window's sum over its count, rounded half away from zero.
    @inline(__always)
    package static func average(_ sum: Int32, count: Int32, range: ClosedRange<Int32>) -> Int32 {
        let count = max(count, 1)
        return clamp((sum > 0 ? sum &+ count / 2 : sum &- count / 2) / count, range)
    }

    /// MEAN over H and W: the int32 sum of `count` codes less their zero point, times the fixed-point multiplier of
    /// input scale / output scale with the division by the count folded into it, plus the output zero point.
    package static func mean(sum: Int32, count: Int, input: Quantization, output: Quantization) -> Int32 {
        var m = Multiplier(Double(input.scales[0]) / Double(output.scales[0]))
        let log2 = count > 0 ? Int.bitWidth - 1 - count.leadingZeroBitCount : 0
        let shift = min(log2, 32, 31 + m.shift)
        if count > 0, shift >= 0 {
            m.fixed = Int32(truncatingIfNeeded: (Int64(m.fixed) << Int64(shift)) / Int64(count))
            m.shift -= shift
        }
        let shifted = sum &- input.zeroPoints[0] &* Int32(truncatingIfNeeded: count)
        return clamp(multiply(shifted, by: m) &+ output.zeroPoints[0], output.storage.range)
    }

    /// The hybrid kernels' quantisation of one image's float input (`AsymmetricQuantizeFloats`): int8 codes over
    /// [min(0, lowest), max(0, highest)], the zero point nudged to an integer, values rounded half away from zero.
    package static func quantizeOnTheFly(_ values: [Float]) -> (codes: [Int32], scale: Float, zeroPoint: Int32) {
        let (low, high) = (Double(min(0, values.min() ?? 0)), Double(max(0, values.max() ?? 0)))
        guard low != high, low.isFinite, high.isFinite else {
            return ([Int32](repeating: 0, count: values.count), 1, 0)
        }
        let (qmin, qmax) = (-128.0, 127.0)
        let scale = (high - low) / (qmax - qmin)
        let fromMin = qmin - low / scale
        let fromMax = qmax - high / scale
        let zeroDouble = abs(qmin) + abs(low / scale) < abs(qmax) + abs(high / scale) ? fromMin : fromMax
        let zero: Int32 =
            zeroDouble <= qmin ? -128 : zeroDouble >= qmax ? 127 : Int32(zeroDouble.rounded(.toNearestOrAwayFromZero))
        let inverse = 1 / Float(scale)
        // Each value over the scale rounded half away from zero, then the zero point added (measured on
        // DenseNet-121's hybrid convs: rounding after adding the zero point misses by a code at halves).
        let codes = values.map { v -> Int32 in
            let r = (v * inverse).rounded(.toNearestOrAwayFromZero)
            return r.isNaN ? zero : Int32(min(max(r + Float(zero), -128), 127))
        }
        return (codes, Float(scale), zero)
    }
}
