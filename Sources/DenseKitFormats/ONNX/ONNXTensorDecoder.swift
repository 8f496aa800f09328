import DenseKitGraph
import Foundation

/// Decodes TensorProto payloads (raw bytes, typed fields, external data) into float32 tensors.
///
/// External data is read only from files inside the model's own folder; sizes are checked against
/// the declared shape before anything is allocated.
package struct ONNXTensorDecoder {
    /// The folder holding the model; external data locations are resolved against it.
    package let folder: URL
    /// Per-tensor element cap (2^31), well above any DenseNet weight.
    package static let maximumElements = 1 << 31

    private var openFiles: [String: FileHandle] = [:]

    package init(folder: URL) { self.folder = folder }

    package enum Element { case float32, float16, bfloat16, float64, int64, int32 }

    package static func element(of dataType: Int32) -> Element? {
        switch dataType {
        case 1: return .float32
        case 10: return .float16
        case 16: return .bfloat16
        case 11: return .float64
        case 7: return .int64
        case 6: return .int32
        default: return nil
        }
    }

    package static func typeName(_ dataType: Int32) -> String {
        let names: [Int32: String] = [
            0: "UNDEFINED", 1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16",
            6: "INT32", 7: "INT64", 8: "STRING", 9: "BOOL", 10: "FLOAT16",
            11: "DOUBLE", 12: "UINT32", 13: "UINT64", 16: "BFLOAT16",
        ]
        return names[dataType] ?? "type \(dataType)"
    }

    /// The element count the dims declare, checked for negatives and overflow.
    package static func elementCount(_ tensor: ONNXTensorRef) throws -> Int {
        var count = 1
        for d in tensor.dims {
            guard d >= 0, d <= Int64(maximumElements) else {
                throw ImportError.malformed(.tensor(tensor.name), problem: "dimension \(d) out of range")
            }
            let (product, overflow) = count.multipliedReportingOverflow(by: Int(d))
            guard !overflow, product <= maximumElements else {
                throw ImportError.malformed(
                    .tensor(tensor.name), problem: "shape \(tensor.dims) has more than 2^31 elements")
            }
            count = product
        }
        return count
    }

    /// Decodes a float tensor (float32, float16, bfloat16 or float64) into float32 values.
    package mutating func floats(_ tensor: ONNXTensorRef) throws -> Tensor {
        guard let element = Self.element(of: tensor.dataType), element != .int64, element != .int32 else {
            throw ImportError.unsupported(
                .tensor(tensor.name), problem: "element type \(Self.typeName(tensor.dataType)) is not a float type")
        }
        let count = try Self.elementCount(tensor)
        let shape = tensor.dims.map { Int($0) }
        let stored: DType = element == .float16 ? .f16 : element == .bfloat16 ? .bf16 : .f32
        let values: [Float]
        switch tensor.payload {
        case .raw(let bytes):
            values = try Self.decode(bytes, element, count, tensor.name)
        case .external(let location, let offset, let length):
            let bytes = try readExternal(tensor.name, location, offset, length, count * Self.size(element))
            values = try Self.decode(bytes, element, count, tensor.name)
        case .floats(let floats):
            guard element == .float32 || floats.isEmpty else {
                throw ImportError.malformed(
                    .tensor(tensor.name), problem: "float_data given for \(Self.typeName(tensor.dataType))")
            }
            values = floats
        case .int32s(let words):
            // float16 and bfloat16 values are stored one per int32 in the typed field.
            guard element == .float16 || element == .bfloat16 else {
                throw ImportError.malformed(
                    .tensor(tensor.name), problem: "int32_data given for \(Self.typeName(tensor.dataType))")
            }
            values = words.map { w in
                element == .float16
                    ? HalfFloat.f16ToFloat(UInt16(truncatingIfNeeded: w))
                    : HalfFloat.bf16ToFloat(UInt16(truncatingIfNeeded: w))
            }
        case .doubles(let doubles):
            values = doubles.map { Float($0) }
        case .int64s:
            throw ImportError.malformed(
                .tensor(tensor.name), problem: "int64_data given for \(Self.typeName(tensor.dataType))")
        case .none:
            values = []
        }
        guard values.count == count else {
            throw ImportError.mismatch(
                .tensor(tensor.name), expected: "\(count) values for shape \(shape)", found: "\(values.count)")
        }
        return Tensor(name: tensor.name, shape: shape, storedDType: stored, values: values)
    }

    /// Decodes an integer tensor (int64 or int32), e.g. a Reshape shape or Pad amounts.
    package mutating func integers(_ tensor: ONNXTensorRef) throws -> [Int64] {
        let count = try Self.elementCount(tensor)
        guard count <= 64 else {
            throw ImportError.unsupported(.tensor(tensor.name), problem: "integer tensor of \(count) values")
        }
        let values: [Int64]
        switch (Self.element(of: tensor.dataType), tensor.payload) {
        case (.int64, .int64s(let stored)): values = stored
        case (.int32, .int32s(let stored)): values = stored.map(Int64.init)
        case (.int64, .raw(let bytes)) where bytes.count == count * 8:
            values = Self.littleEndian(bytes, count, Int64.self)
        case (.int32, .raw(let bytes)) where bytes.count == count * 4:
            values = Self.littleEndian(bytes, count, Int32.self)
        case (.int64, .external(let location, let offset, let length)):
            values = Self.littleEndian(
                try readExternal(tensor.name, location, offset, length, count * 8), count, Int64.self)
        default:
            throw ImportError.malformed(
                .tensor(tensor.name), problem: "cannot read \(Self.typeName(tensor.dataType)) integers")
        }
        guard values.count == count else {
            throw ImportError.mismatch(
                .tensor(tensor.name), expected: "\(count) values for shape \(tensor.dims)", found: "\(values.count)")
        }
        return values
    }

    /// The storage of a quantised tensor's codes (UINT8, INT8 or INT32), or nil for another type.
    package static func quantizedStorage(of dataType: Int32) -> Quantization.Storage? {
        switch dataType {
        case 2: return .uint8
        case 3: return .int8
        case 6: return .int32
        default: return nil
        }
    }

    /// Decodes the codes of a UINT8, INT8 or INT32 tensor (a quantised weight, a scale's zero point), widened.
    package mutating func codes(_ tensor: ONNXTensorRef) throws -> [Int32] {
        guard let storage = Self.quantizedStorage(of: tensor.dataType) else {
            throw ImportError.mismatch(
                .tensor(tensor.name), expected: "UINT8, INT8 or INT32 codes", found: Self.typeName(tensor.dataType))
        }
        let count = try Self.elementCount(tensor)
        let width = storage == .int32 ? 4 : 1
        func fromBytes(_ bytes: Data) throws -> [Int32] {
            guard bytes.count == count * width else {
                throw ImportError.mismatch(
                    .tensor(tensor.name), expected: "\(count * width) bytes for \(count) values",
                    found: "\(bytes.count)")
            }
            switch storage {
            // Through the bytes' buffer: `Data`'s own iteration goes byte by byte through its storage.
            case .uint8: return bytes.withUnsafeBytes { raw in raw.map { Int32($0) } }
            case .int8: return bytes.withUnsafeBytes { raw in raw.map { Int32(Int8(bitPattern: $0)) } }
            case .int32: return Self.littleEndian(bytes, count, Int32.self).map { Int32(truncatingIfNeeded: $0) }
            }
        }
        let values: [Int32]
        switch tensor.payload {
        case .raw(let bytes): values = try fromBytes(bytes)
        case .external(let location, let offset, let length):
            values = try fromBytes(readExternal(tensor.name, location, offset, length, count * width))
        case .int32s(let words):
            // UINT8 and INT8 values are stored one per int32 in the typed field (checked against the type later).
            values = words
        case .none: values = []
        default:
            throw ImportError.malformed(
                .tensor(tensor.name),
                problem: "a typed field other than int32_data for \(Self.typeName(tensor.dataType))")
        }
        guard values.count == count else {
            throw ImportError.mismatch(
                .tensor(tensor.name), expected: "\(count) values for shape \(tensor.dims)", found: "\(values.count)")
        }
        return values
    }

    /// `count` little-endian integers of type `T` from `bytes` (which hold at least that many), widened.
    private static func littleEndian<T: FixedWidthInteger>(_ bytes: Data, _ count: Int, _: T.Type) -> [Int64] {
        bytes.withUnsafeBytes { raw in
            (0..<count).map {
                Int64(T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)))
            }
        }
    }

    package static func size(_ element: Element) -> Int {
        switch element {
        case .float32, .int32: return 4
        case .float16, .bfloat16: return 2
        case .float64, .int64: return 8
        }
    }

    private static func decode(_ bytes: Data, _ element: Element, _ count: Int, _ name: String) throws -> [Float] {
        let width = size(element)
        guard bytes.count == count * width else {
            throw ImportError.mismatch(
                .tensor(name), expected: "\(count * width) bytes for \(count) values", found: "\(bytes.count)")
        }
        let stored: StoredFloat
        switch element {
        case .float32: stored = .f32
        case .float16: stored = .f16
        case .bfloat16: stored = .bf16
        case .float64: stored = .f64
        case .int64, .int32: return []
        }
        return bytes.withUnsafeBytes { stored.decode($0, count: count) }
    }

    /// Reads `expected` bytes of external data, confined to the model's folder.
    private mutating func readExternal(
        _ name: String, _ location: String, _ offset: Int, _ length: Int?,
        _ expected: Int
    ) throws -> Data {
        guard !location.isEmpty else {
            throw ImportError.malformed(.tensor(name), problem: "external data without a location")
        }
        guard !location.hasPrefix("/"), !location.split(separator: "/").contains("..") else {
            throw ImportError.malformed(
                .tensor(name), problem: "external data location '\(location)' escapes the model's folder")
        }
        let url = folder.appendingPathComponent(location).standardizedFileURL
        let resolved = url.resolvingSymlinksInPath().path
        let root = folder.standardizedFileURL.resolvingSymlinksInPath().path
        guard resolved.hasPrefix(root.hasSuffix("/") ? root : root + "/") else {
            throw ImportError.malformed(
                .tensor(name), problem: "external data location '\(location)' escapes the model's folder")
        }
        guard offset >= 0 else {
            throw ImportError.malformed(.tensor(name), problem: "bad external data offset")
        }
        if let length, length != expected {
            throw ImportError.mismatch(
                .tensor(name), expected: "external data of \(expected) bytes", found: "length \(length)")
        }
        let handle: FileHandle
        if let open = openFiles[resolved] {
            handle = open
        } else {
            let descriptor: Int32
            do {
                descriptor = try RegularFile.open(resolved).descriptor
            } catch let error as ImportError {
                throw ImportError.unreadable(
                    .tensor(name), problem: "cannot open external data file '\(location)': \(error.message)")
            }
            let opened = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
            openFiles[resolved] = opened
            handle = opened
        }
        let size = (try? handle.seekToEnd()) ?? 0
        // offset and expected come from the file: their sum is checked, never trapped on.
        let (end, overflow) = offset.addingReportingOverflow(expected)
        guard !overflow, UInt64(end) <= size else {
            throw ImportError.mismatch(
                .tensor(name),
                expected:
                    "external data '\(location)' to hold bytes \(offset) to \(overflow ? "beyond 2^63" : String(end))",
                found: "a file of \(size) bytes")
        }
        try handle.seek(toOffset: UInt64(offset))
        guard let data = try handle.read(upToCount: expected), data.count == expected else {
            throw ImportError.malformed(.tensor(name), problem: "short read from external data '\(location)'")
        }
        return data
    }
}
