import DenseKitExecute
import TestSupport
import Testing

/// onnxruntime's rounding and saturation of a requantised value, one value at a time and 8 at a time.
@Suite struct OnnxruntimeArithmeticTests {
    /// Halves round to the even integer (not away from zero), then the zero point is added; values past the type
    /// clamp to its limits; NaN becomes the zero point.
    @Test func roundsHalvesToEvenAndSaturates() {
        let cases: [(Float, Int32, ClosedRange<Int32>, Int32)] = [
            (2.5, 0, 0...255, 2), (3.5, 0, 0...255, 4), (-2.5, 128, 0...255, 126), (-3.5, 128, 0...255, 124),
            (0.49999997, 0, 0...255, 0), (254.5, 0, 0...255, 254), (255.5, 0, 0...255, 255), (300, 0, 0...255, 255),
            (-1, 0, 0...255, 0), (127.5, 0, -128...127, 127), (-128.5, 0, -128...127, -128), (-0.5, -3, -128...127, -3),
            (.nan, 17, 0...255, 17), (.infinity, 5, 0...255, 255), (-.infinity, 5, 0...255, 0),
        ]
        for (scaled, zero, range, want) in cases {
            #expect(OnnxruntimeArithmetic.saturate(scaled, zeroPoint: zero, range: range) == want, "\(scaled)")
            let lanes = OnnxruntimeArithmetic.saturate(SIMD8(repeating: scaled), zeroPoint: zero, range: range)
            #expect(lanes == SIMD8(repeating: want), "\(scaled): \(lanes)")
        }
    }

    /// The vector form gives every lane the one-value form's code: random values across and past both types'
    /// ranges, a quarter of them exact halves.
    @Test(arguments: [
        (Int32(0), 0...Int32(255)), (Int32(131), 0...255), (Int32(0), -128...127), (Int32(-9), -128...127),
    ])
    func eightAtATimeIsOneAtATime(_ parameters: (Int32, ClosedRange<Int32>)) {
        let (zero, range) = parameters
        var rng = SeededRandom(UInt64(zero + 500))
        for _ in 0..<4000 {
            var values = SIMD8<Float>()
            for lane in 0..<8 {
                let value = Float.random(in: -600...600, using: &rng)
                values[lane] = lane % 4 == 0 ? value.rounded(.down) + 0.5 : value
            }
            let lanes = OnnxruntimeArithmetic.saturate(values, zeroPoint: zero, range: range)
            for lane in 0..<8 {
                #expect(lanes[lane] == OnnxruntimeArithmetic.saturate(values[lane], zeroPoint: zero, range: range))
            }
        }
    }
}
