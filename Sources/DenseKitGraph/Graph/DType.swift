import Foundation

/// The element types a DenseKit weight tensor can be stored in.
///
/// Activations are always float32; weights are widened to float32 when a model is loaded.
public enum DType: String, Sendable, CaseIterable, Codable {
    case f32, f16, bf16

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        }
    }
}

/// Conversions between float32 and the 16-bit storage types, exact where the format allows.
public enum HalfFloat {
    /// IEEE 754 binary16 bits to float32 (exact, subnormals included).
    public static func f16ToFloat(_ bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = Int((bits >> 10) & 0x1F)
        var mantissa = UInt32(bits & 0x3FF)
        if exponent == 0x1F {  // infinity or NaN
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        if exponent == 0 {
            if mantissa == 0 { return Float(bitPattern: sign) }
            var normalExponent = -14
            while mantissa & 0x400 == 0 {
                mantissa <<= 1
                normalExponent -= 1
            }
            mantissa &= 0x3FF
            return Float(bitPattern: sign | UInt32(normalExponent + 127) << 23 | mantissa << 13)
        }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | mantissa << 13)
    }

    /// float32 to IEEE 754 binary16 bits, rounding to nearest even.
    public static func floatToF16(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exponent = Int((bits >> 23) & 0xFF)
        let mantissa = bits & 0x7F_FFFF
        if exponent == 0xFF {
            return sign | 0x7C00 | (mantissa != 0 ? 0x200 : 0)
        }
        let halfExponent = exponent - 127 + 15
        if halfExponent >= 0x1F { return sign | 0x7C00 }
        if halfExponent <= 0 {
            if halfExponent < -10 { return sign }
            let significand = mantissa | 0x80_0000
            let shift = UInt32(14 - halfExponent)
            var half = significand >> shift
            let rest = significand & ((1 << shift) - 1)
            let halfway = UInt32(1) << (shift - 1)
            if rest > halfway || (rest == halfway && half & 1 == 1) { half += 1 }
            return sign | UInt16(half)
        }
        var half = UInt32(halfExponent) << 10 | mantissa >> 13
        let rest = mantissa & 0x1FFF
        if rest > 0x1000 || (rest == 0x1000 && half & 1 == 1) { half += 1 }
        return sign | UInt16(half)
    }

    /// bfloat16 bits to float32 (exact).
    public static func bf16ToFloat(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// float32 to bfloat16 bits, rounding to nearest even (NaN stays NaN).
    public static func floatToBF16(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(bits >> 16) | 0x40 }
        let rounding = 0x7FFF + ((bits >> 16) & 1)
        return UInt16((bits &+ rounding) >> 16)
    }
}

/// The float encodings files store weights in, decoded to float32 in one place for every reader.
public enum StoredFloat: Sendable {
    case f32, f16, bf16, f64

    public var size: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .f64: return 8
        }
    }

    /// The dtype a tensor reports having been stored in (float64 is narrowed, and reported as f32).
    public var dtype: DType {
        switch self {
        case .f32, .f64: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        }
    }

    /// `count` little-endian values starting at byte `offset` of `raw`, which the caller has checked holds them.
    public func decode(_ raw: UnsafeRawBufferPointer, at offset: Int = 0, count: Int) -> [Float] {
        switch self {
        case .f32:
            return (0..<count).map {
                Float(
                    bitPattern: UInt32(
                        littleEndian: raw.loadUnaligned(fromByteOffset: offset + 4 * $0, as: UInt32.self)))
            }
        case .f16:
            return (0..<count).map {
                HalfFloat.f16ToFloat(
                    UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 2 * $0, as: UInt16.self)))
            }
        case .bf16:
            return (0..<count).map {
                HalfFloat.bf16ToFloat(
                    UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 2 * $0, as: UInt16.self)))
            }
        case .f64:
            return (0..<count).map {
                Float(
                    Double(
                        bitPattern: UInt64(
                            littleEndian: raw.loadUnaligned(fromByteOffset: offset + 8 * $0, as: UInt64.self))))
            }
        }
    }
}

extension StoredFloat {
    public init(_ dtype: DType) {
        switch dtype {
        case .f32: self = .f32
        case .f16: self = .f16
        case .bf16: self = .bf16
        }
    }

    /// Writes `tensor`'s values little-endian in this encoding at `out`, which has room for them.
    public func write(_ tensor: Tensor, to out: UnsafeMutableRawPointer) {
        tensor.withFloats { v in
            switch self {
            case .f32:
                for (i, x) in v.enumerated() {
                    out.storeBytes(of: x.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
                }
            case .f16:
                for (i, x) in v.enumerated() {
                    out.storeBytes(of: HalfFloat.floatToF16(x).littleEndian, toByteOffset: i * 2, as: UInt16.self)
                }
            case .bf16:
                for (i, x) in v.enumerated() {
                    out.storeBytes(of: HalfFloat.floatToBF16(x).littleEndian, toByteOffset: i * 2, as: UInt16.self)
                }
            case .f64:
                for (i, x) in v.enumerated() {
                    out.storeBytes(of: Double(x).bitPattern.littleEndian, toByteOffset: i * 8, as: UInt64.self)
                }
            }
        }
    }

    /// `tensor`'s values little-endian in this encoding.
    public func encode(_ tensor: Tensor) -> Data {
        var data = Data(count: tensor.count * size)
        if tensor.count > 0 { data.withUnsafeMutableBytes { write(tensor, to: $0.baseAddress!) } }
        return data
    }
}
