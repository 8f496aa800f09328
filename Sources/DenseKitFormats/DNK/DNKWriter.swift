import DenseKitGraph
import Foundation

/// Encodes a canonical DenseNet as a `.dnk` file (layout in schemas/dnk-format.md).
public enum DNKWriter {
    package static let magic = Array("DENSEKIT".utf8)
    package static let headerSize = 128
    package static let entrySize = 96
    package static let nameSize = 48

    /// The format version a file holding `net` gets: 1.1 where a 1.0 reader reads it right (the
    /// paper's head: global average pool, one dense layer, softmax or logits), 2.0 for every other
    /// head, which a 1.0 reader would misread; 3.0 for a model with an input transform; 4.0 for a deep or
    /// anti-aliased stem; 5.0 for a quantised one; 6.0 for one that computes its input transform on codes; 7.0
    /// for one whose steps on codes subtract or hold a constant per channel.
    public static func version(for net: DenseNet) -> (major: Int, minor: Int) {
        if let steps = net.inputTransform?.quantized?.steps {
            // A 6.x reader knows neither a subtraction nor a code per channel.
            if steps.contains(where: { $0.operation == .subtract || $0.constants.count > 1 }) { return (7, 0) }
            // A 5.x reader would run the transform in float, then quantise.
            return (6, 0)
        }
        // Integer codes and activation quantisation: a 4.x reader would run the model in float.
        if net.isQuantized { return (5, 0) }
        // A 3.x reader would run the stem without its further convs or its blur.
        if !net.stem.deep.isEmpty || net.stem.blur != nil { return (4, 0) }
        // An input transform: a 1.x or 2.x reader would run the model without it.
        if net.inputTransform != nil { return (3, 0) }
        let head = net.head
        return head.pool == .average && head.dense.count == 1
            && (head.activation == .softmax || head.activation == .linear)
            ? (1, 1) : (2, 0)
    }

    /// The file's bytes. Conv and classifier weights are stored as `dtype`, quantised ones as their codes; 1-D
    /// tensors as f32 (or their codes).
    /// `metadata` is the JSON text; `extra` tensors follow the canonical ones.
    public static func encode(_ net: DenseNet, dtype: DType, metadata: Data, extra: [(String, Tensor)] = [])
        throws -> Data
    {
        try encode(net, metadata: metadata, extra: extra) { $0.shape.count >= 2 ? dtype : .f32 }
    }

    /// The file's bytes, each tensor stored in the dtype `dtypeOf` chooses for it, or as its codes when it has some.
    package static func encode(
        _ net: DenseNet, metadata json: Data, extra: [(String, Tensor)] = [], dtypeOf: (Tensor) -> DType
    ) throws -> Data {
        let version = version(for: net)
        let named = CanonicalLayout.tensors(of: net) + extra
        let tableOffset = align(headerSize + json.count, 8)
        let dataOffset = align(tableOffset + named.count * entrySize, 64)
        var entries: [(name: String, type: DNKStoredType, shape: [Int], offset: Int, length: Int)] = []
        var cursor = dataOffset
        for (name, t) in named {
            guard name.utf8.count < nameSize else {
                throw WriteError.doesNotFit(format: "dnk", problem: "tensor name '\(name)' too long")
            }
            let stored = t.quantized.map { DNKStoredType.integer($0.quantization.storage) } ?? .float(dtypeOf(t))
            let length = t.count * stored.size
            entries.append((name, stored, t.shape, cursor, length))
            cursor = align(cursor + length, 64)
        }
        let fileLength = cursor
        var file = Data(count: fileLength)
        file.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!
            // Metadata, then tensor data (padding stays zero).
            json.withUnsafeBytes {
                base.advanced(by: headerSize).copyMemory(from: $0.baseAddress!, byteCount: json.count)
            }
            for ((_, t), e) in zip(named, entries) {
                switch e.type {
                case .float(let dtype): StoredFloat(dtype).write(t, to: base.advanced(by: e.offset))
                case .integer: e.type.write(t.quantized?.codes ?? [], to: base.advanced(by: e.offset))
                }
            }
            // Table.
            for (index, e) in entries.enumerated() {
                let at = tableOffset + index * entrySize
                for (i, byte) in e.name.utf8.enumerated() {
                    base.storeBytes(of: byte, toByteOffset: at + i, as: UInt8.self)
                }
                base.storeBytes(of: e.type.code, toByteOffset: at + 48, as: UInt8.self)
                base.storeBytes(of: UInt8(e.shape.count), toByteOffset: at + 49, as: UInt8.self)
                for (i, stored) in e.shape.enumerated() {
                    base.storeBytes(of: UInt32(stored).littleEndian, toByteOffset: at + 52 + 4 * i, as: UInt32.self)
                }
                base.storeBytes(of: UInt64(e.offset).littleEndian, toByteOffset: at + 68, as: UInt64.self)
                base.storeBytes(of: UInt64(e.length).littleEndian, toByteOffset: at + 76, as: UInt64.self)
                let end = index + 1 < entries.count ? entries[index + 1].offset : fileLength
                let sum = LaneHash.hash(
                    UnsafeRawBufferPointer(start: base.advanced(by: e.offset), count: end - e.offset))
                base.storeBytes(of: sum.littleEndian, toByteOffset: at + 84, as: UInt64.self)
            }
            // Header.
            for (i, b) in magic.enumerated() { base.storeBytes(of: b, toByteOffset: i, as: UInt8.self) }
            base.storeBytes(of: UInt16(version.major).littleEndian, toByteOffset: 8, as: UInt16.self)
            base.storeBytes(of: UInt16(version.minor).littleEndian, toByteOffset: 10, as: UInt16.self)
            base.storeBytes(of: UInt32(headerSize).littleEndian, toByteOffset: 12, as: UInt32.self)
            base.storeBytes(of: UInt64(headerSize).littleEndian, toByteOffset: 16, as: UInt64.self)
            base.storeBytes(of: UInt64(json.count).littleEndian, toByteOffset: 24, as: UInt64.self)
            base.storeBytes(of: UInt64(tableOffset).littleEndian, toByteOffset: 32, as: UInt64.self)
            base.storeBytes(of: UInt32(entries.count).littleEndian, toByteOffset: 40, as: UInt32.self)
            base.storeBytes(of: UInt32(entrySize).littleEndian, toByteOffset: 44, as: UInt32.self)
            base.storeBytes(of: UInt64(dataOffset).littleEndian, toByteOffset: 48, as: UInt64.self)
            base.storeBytes(of: UInt64(fileLength - dataOffset).littleEndian, toByteOffset: 56, as: UInt64.self)
            base.storeBytes(of: UInt64(fileLength).littleEndian, toByteOffset: 64, as: UInt64.self)
            let metaSum = XXH64.hash(
                UnsafeRawBufferPointer(start: base.advanced(by: headerSize), count: tableOffset - headerSize))
            let tableSum = XXH64.hash(
                UnsafeRawBufferPointer(start: base.advanced(by: tableOffset), count: dataOffset - tableOffset))
            base.storeBytes(of: metaSum.littleEndian, toByteOffset: 72, as: UInt64.self)
            base.storeBytes(of: tableSum.littleEndian, toByteOffset: 80, as: UInt64.self)
            let headerSum = XXH64.hash(UnsafeRawBufferPointer(start: base, count: 120))
            base.storeBytes(of: headerSum.littleEndian, toByteOffset: 120, as: UInt64.self)
        }
        return file
    }

    package static func align(_ offset: Int, _ alignment: Int) -> Int {
        (offset + alignment - 1) / alignment * alignment
    }
}
