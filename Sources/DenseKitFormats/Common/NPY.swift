import DenseKitGraph
import Foundation

/// Reads and writes NumPy `.npy` arrays (format versions 1 to 3).
///
/// Layout: magic "\x93NUMPY", major and minor version bytes, header length (uint16 LE for v1, uint32
/// LE for v2/v3), an ASCII (v3: UTF-8) Python dict with 'descr', 'fortran_order' and 'shape', padded
/// with spaces and a newline, then the data. Reads float32, float64 and float16 of either byte order,
/// converting to float32; Fortran-ordered arrays are reordered to C order.
public enum NPY {
    public struct Array: Equatable, Sendable {
        public var shape: [Int]
        public var values: [Float]
        public init(shape: [Int], values: [Float]) {
            self.shape = shape
            self.values = values
        }
    }

    public enum Error: Swift.Error, CustomStringConvertible {
        case malformed(String)
        case unsupported(String)
        case io(String)

        public var description: String {
            switch self {
            case .malformed(let message), .unsupported(let message), .io(let message): return message
            }
        }
    }

    package static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
    package static let maximumHeader = 1 << 16
    package static let maximumRank = 8
    package static let maximumElements = 1 << 31

    public static func read(path: String) throws -> Array {
        // Through a descriptor checked to be a regular file (a FIFO would block, a device never end),
        // the size it had when opened read and no more.
        let data: Data
        do {
            data = try FileMapping.contents(path: path)
        } catch let error as ImportError {
            throw Error.io(error.description)
        }
        return try parse(data)
    }

    public static func parse(_ data: Data) throws -> Array {
        let bytes = [UInt8](data)
        guard bytes.count >= 10, Swift.Array(bytes[0..<6]) == magic else {
            throw Error.malformed("not a .npy file (bad magic)")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw Error.malformed("truncated header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw Error.unsupported("format version \(major).\(bytes[7]) (DenseKit reads 1.0 to 3.0)")
        }
        guard headerLength <= maximumHeader, headerStart + headerLength <= bytes.count else {
            throw Error.malformed("header length \(headerLength) runs past the end of the file")
        }
        guard
            let header = String(
                bytes: bytes[headerStart..<(headerStart + headerLength)], encoding: major == 3 ? .utf8 : .ascii)
        else {
            throw Error.malformed("header is not text")
        }
        let fields = try HeaderDictionary(header).fields
        guard Set(fields.keys) == ["descr", "fortran_order", "shape"] else {
            throw Error.malformed(
                """
                header keys [\(fields.keys.sorted().map { "'\($0)'" }.joined(separator: ", "))], expected exactly \
                ['descr', 'fortran_order', 'shape'] (as numpy)
                """)
        }
        guard case .string(let type) = fields["descr"] else { throw Error.malformed("descr is not a string") }
        guard case .boolean(let isFortran) = fields["fortran_order"] else {
            throw Error.malformed("fortran_order is not True or False")
        }
        guard case .tuple(let shape) = fields["shape"] else { throw Error.malformed("shape is not a tuple") }
        guard shape.count <= maximumRank else {
            throw Error.unsupported("rank \(shape.count) (at most \(maximumRank))")
        }
        var count = 1
        for d in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, product <= maximumElements else { throw Error.malformed("shape \(shape) is too large") }
            count = product
        }
        let width: Int
        let kind: Character
        let bigEndian: Bool
        switch type {
        // '=' (native) and '|' (no byte order) are numpy's other spellings of little-endian here.
        case "<f4", "=f4", "|f4": (width, kind, bigEndian) = (4, "f", false)
        case ">f4": (width, kind, bigEndian) = (4, "f", true)
        case "<f8", "=f8", "|f8": (width, kind, bigEndian) = (8, "d", false)
        case ">f8": (width, kind, bigEndian) = (8, "d", true)
        case "<f2", "=f2", "|f2": (width, kind, bigEndian) = (2, "h", false)
        case ">f2": (width, kind, bigEndian) = (2, "h", true)
        default: throw Error.unsupported("dtype '\(type)' (float32, float64 or float16 only)")
        }
        let dataStart = headerStart + headerLength
        let needed = count * width
        guard bytes.count - dataStart == needed else {
            throw Error.malformed(
                "shape \(shape) of \(type) needs \(needed) data bytes, found \(bytes.count - dataStart)")
        }
        var values = [Float](repeating: 0, count: count)
        bytes.withUnsafeBytes { raw in
            for i in 0..<count {
                let at = dataStart + i * width
                switch kind {
                case "f":
                    var word = raw.loadUnaligned(fromByteOffset: at, as: UInt32.self)
                    word = bigEndian ? UInt32(bigEndian: word) : UInt32(littleEndian: word)
                    values[i] = Float(bitPattern: word)
                case "d":
                    var word = raw.loadUnaligned(fromByteOffset: at, as: UInt64.self)
                    word = bigEndian ? UInt64(bigEndian: word) : UInt64(littleEndian: word)
                    values[i] = Float(Double(bitPattern: word))
                default:
                    var word = raw.loadUnaligned(fromByteOffset: at, as: UInt16.self)
                    word = bigEndian ? UInt16(bigEndian: word) : UInt16(littleEndian: word)
                    values[i] = HalfFloat.f16ToFloat(word)
                }
            }
        }
        if isFortran && shape.count > 1 { values = cOrder(fromFortran: values, shape: shape) }
        return Array(shape: shape, values: values)
    }

    /// Writes float32 little-endian, version 1.0, C order; atomically (temporary file, then rename).
    public static func write(_ array: Array, to path: String) throws {
        let shape =
            array.shape.count == 1
            ? "(\(array.shape[0]),)" : "(" + array.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var data = Data(magic + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        data.append(Data(header.utf8))
        array.values.withUnsafeBufferPointer { p in
            data.append(contentsOf: UnsafeRawBufferPointer(p))
        }
        try AtomicFile.write(data, to: path)
    }

    // MARK: parsing helpers

    private static func cOrder(fromFortran values: [Float], shape: [Int]) -> [Float] {
        var out = [Float](repeating: 0, count: values.count)
        var fStrides = [Int](repeating: 1, count: shape.count)
        for i in 1..<shape.count { fStrides[i] = fStrides[i - 1] * shape[i - 1] }
        var index = [Int](repeating: 0, count: shape.count)
        for c in 0..<values.count {
            var fortranIndex = 0
            for axis in 0..<shape.count { fortranIndex += index[axis] * fStrides[axis] }
            out[c] = values[fortranIndex]
            var axis = shape.count - 1
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < shape[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
        return out
    }
}
