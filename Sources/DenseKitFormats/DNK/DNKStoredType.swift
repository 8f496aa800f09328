import DenseKitGraph

/// How a `.dnk` tensor's elements are stored: the table's dtype byte. Floats (0 f32, 1 f16, 2 bf16) are the values;
/// integers (from 5.0: 3 int8, 4 uint8, 5 int32) are a quantised weight's codes, whose scales and zero points the
/// metadata's `structure.quantization.tensors` holds.
package enum DNKStoredType: Equatable {
    case float(DType)
    case integer(Quantization.Storage)

    /// In order of their codes.
    package static let all: [DNKStoredType] = [
        .float(.f32), .float(.f16), .float(.bf16), .integer(.int8), .integer(.uint8), .integer(.int32),
    ]

    package init?(code: Int) {
        guard let type = Self.all[safe: code] else { return nil }
        self = type
    }

    package var code: UInt8 { UInt8(Self.all.firstIndex(of: self) ?? 0) }

    package var size: Int {
        switch self {
        case .float(let dtype): return dtype.size
        case .integer(let storage): return storage == .int32 ? 4 : 1
        }
    }

    package var name: String {
        switch self {
        case .float(let dtype): return dtype.rawValue
        case .integer(let storage): return storage.rawValue
        }
    }

    /// Writes `codes` in this (integer) type at `destination`.
    package func write(_ codes: [Int32], to destination: UnsafeMutableRawPointer) {
        for (i, code) in codes.enumerated() {
            switch self {
            case .integer(.int8):
                destination.storeBytes(of: Int8(truncatingIfNeeded: code), toByteOffset: i, as: Int8.self)
            case .integer(.uint8):
                destination.storeBytes(of: UInt8(truncatingIfNeeded: code), toByteOffset: i, as: UInt8.self)
            default: destination.storeBytes(of: code.littleEndian, toByteOffset: 4 * i, as: Int32.self)
            }
        }
    }

    /// `count` codes of this (integer) type at `offset`.
    package func codes(_ raw: UnsafeRawBufferPointer, at offset: Int, count: Int) -> [Int32] {
        (0..<count).map { i in
            switch self {
            case .integer(.int8): Int32(raw.load(fromByteOffset: offset + i, as: Int8.self))
            case .integer(.uint8): Int32(raw.load(fromByteOffset: offset + i, as: UInt8.self))
            default: Int32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 4 * i, as: Int32.self))
            }
        }
    }
}
