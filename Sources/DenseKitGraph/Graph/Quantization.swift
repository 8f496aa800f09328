/// How integer codes stand for real values (ONNX's QuantizeLinear and TFLite's affine quantisation):
/// real = (code - zeroPoint) * scale, with one scale and zero point for the tensor or one per index of
/// `axis`.
///
/// A weight tensor carries it beside its codes (`Tensor.quantized`); an activation's is on the op that
/// reads or produces it (`Conv2D.inputQuantization`, `BatchNorm.outputQuantization`, ...).
public struct Quantization: Sendable, Equatable {
    public enum Storage: String, Sendable, Codable {
        case uint8, int8, int32

        /// The first of `codes` the type cannot hold, or nil. (One pass for the smallest and largest first: the
        /// check runs over every weight of every int8 model, and a closure per code made it a tenth of a load.)
        public func firstOutside(_ codes: [Int32]) -> Int32? {
            var (lowest, highest) = (Int32.max, Int32.min)
            for code in codes {
                lowest = min(lowest, code)
                highest = max(highest, code)
            }
            let bounds = range
            guard !codes.isEmpty, lowest < bounds.lowerBound || highest > bounds.upperBound else { return nil }
            return codes.first { $0 < bounds.lowerBound || $0 > bounds.upperBound }
        }

        /// The codes the type holds.
        public var range: ClosedRange<Int32> {
            switch self {
            case .uint8: return 0...255
            case .int8: return -128...127
            case .int32: return Int32.min...Int32.max
            }
        }
    }

    public var storage: Storage
    public var scales: [Float]
    public var zeroPoints: [Int32]
    /// The axis the scales run along, for per-channel quantisation; nil for one scale.
    public var axis: Int?

    public init(storage: Storage, scales: [Float], zeroPoints: [Int32], axis: Int? = nil) {
        self.storage = storage
        self.scales = scales
        self.zeroPoints = zeroPoints
        self.axis = axis
    }

    /// One scale and zero point for the whole tensor.
    public init(storage: Storage, scale: Float, zeroPoint: Int32) {
        self.init(storage: storage, scales: [scale], zeroPoints: [zeroPoint])
    }

    public var isPerTensor: Bool { axis == nil }

    /// The scale of index `i` along the axis (the one scale when per tensor).
    public func scale(_ i: Int) -> Float { scales.count == 1 ? scales[0] : scales[i] }
    public func zeroPoint(_ i: Int) -> Int32 { zeroPoints.count == 1 ? zeroPoints[0] : zeroPoints[i] }

    /// Whether quantising to `other` gives the same real values as quantising to this: the same parameters, or
    /// the same scales with one uint8 and the other int8 and their zero points 128 apart, so that every code is
    /// the other's plus 128, saturation included (TensorFlow Lite's QUANTIZE between a uint8 input or output and
    /// an int8 model).
    public func givesTheSameValues(as other: Quantization) -> Bool {
        if self == other { return true }
        let offset = storage.range.lowerBound - other.storage.range.lowerBound
        return Set([storage, other.storage]) == [.uint8, .int8] && scales == other.scales && axis == other.axis
            && zeroPoints.count == other.zeroPoints.count
            && zip(zeroPoints, other.zeroPoints).allSatisfy { $0 - $1 == offset }
    }

    /// The code that stands for 0 clamps everything below it: a quantised ReLU output.
    public var clampsAtZero: Bool { isPerTensor && zeroPoints[0] == storage.range.lowerBound }

    /// What is wrong with the parameters of a tensor whose axis has `length` entries (nil: not known), or nil
    /// when nothing is: every scale finite and positive, every zero point in the type's range, as many of each
    /// as the axis is long. `inScales` says whether the scales (or else the zero points) are at fault.
    public func problem(axisLength length: Int?) -> (inScales: Bool, expected: String, found: String)? {
        if let bad = scales.first(where: { !($0.isFinite && $0 > 0) }) {
            return (true, "quantisation scales finite and above 0", "scale \(bad)")
        }
        if let bad = zeroPoints.first(where: { !storage.range.contains($0) }) {
            return (false, "zero points of \(storage.rawValue) (\(storage.range))", "zero point \(bad)")
        }
        if axis == nil {
            guard scales.count == 1 else { return (true, "one scale for a per-tensor quantisation", "\(scales.count)") }
        } else if let length, scales.count != length {
            return (true, "one scale per index of axis \(axis ?? 0) (\(length))", "\(scales.count)")
        }
        guard scales.count == zeroPoints.count else {
            return (false, "as many zero points as scales (\(scales.count))", "\(zeroPoints.count)")
        }
        return nil
    }
}

/// A weight tensor's integer codes as the file stores them, with how they map to its float values.
public struct QuantizedCodes: Sendable, Equatable {
    public var quantization: Quantization
    /// The stored codes, widened; the tensor's float values are their dequantised values.
    public var codes: [Int32]

    public init(quantization: Quantization, codes: [Int32]) {
        self.quantization = quantization
        self.codes = codes
    }

    /// (code - zero point) * scale for every code, index `i` of the axis at `stride` apart in a tensor of
    /// `shape`: the float values DequantizeLinear gives.
    public static func dequantize(_ codes: [Int32], _ q: Quantization, shape: [Int]) -> [Float] {
        guard let axis = q.axis, axis < shape.count else {
            let (scale, zero) = (q.scales[0], q.zeroPoints[0])
            return codes.map { Float($0 &- zero) * scale }
        }
        let inner = shape[(axis + 1)...].reduce(1, *)
        let length = shape[axis]
        return codes.indices.map { i in
            let channel = (i / max(inner, 1)) % max(length, 1)
            return Float(codes[i] &- q.zeroPoints[channel]) * q.scales[channel]
        }
    }
}
