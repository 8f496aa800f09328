import DenseKit
import DenseKitFormats
import DenseKitGraph
import Foundation
import FuzzSupport

/// `bytes` with every checksum recomputed from the header's own offsets (where they lie inside the
/// file), as a forger would: without this, nearly every mutation stops at a checksum and the
/// structure checks, validation and the executor behind them are never reached.
func resealed(_ bytes: Data) -> Data {
    var file = bytes
    let size = file.count
    guard size >= 128 else { return file }
    func u32(_ at: Int) -> Int {
        file.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
    }
    func u64(_ at: Int) -> Int? {
        let value = file.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }
        return value <= UInt64(size) ? Int(value) : nil
    }
    func put(_ at: Int, _ value: UInt64) {
        file.withUnsafeMutableBytes { $0.storeBytes(of: value.littleEndian, toByteOffset: at, as: UInt64.self) }
    }
    func hash(_ start: Int, _ end: Int, lanes: Bool = false) -> UInt64 {
        file.withUnsafeBytes { raw in
            let region = UnsafeRawBufferPointer(rebasing: raw[start..<end])
            return lanes ? LaneHash.hash(region) : XXH64.hash(region)
        }
    }
    if let meta = u64(16), let table = u64(32), let data = u64(48), meta <= table, table <= data, data <= size {
        put(72, hash(meta, table))
        put(80, hash(table, data))
        let count = u32(40)
        for i in 0..<min(count, 4096) {
            let at = table + 96 * i
            guard at + 96 <= data, let start = u64(at + 68) else { break }
            let next = i + 1 < count && at + 192 <= data ? u64(at + 96 + 68) ?? size : size
            guard start <= next else { break }
            put(at + 84, hash(start, next, lanes: true))
        }
    }
    put(120, hash(0, 120))
    return file
}

/// A tensor's values as bit patterns (a NaN equals itself here).
func bits(_ tensor: Tensor) -> [UInt32] { tensor.values.map(\.bitPattern) }

/// `bytes` at a 64-byte boundary, where a file's mapping would put them.
func aligned(_ bytes: Data) -> Data {
    let base = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
    bytes.withUnsafeBytes { if let source = $0.baseAddress { base.copyMemory(from: source, byteCount: bytes.count) } }
    return Data(bytesNoCopy: base, count: bytes.count, deallocator: .custom { base, _ in base.deallocate() })
}

fuzz { bytes in
    guard let net = try? DNKReader.load(data: aligned(resealed(bytes)), path: "fuzz.dnk") else { return }
    exercise(net)
    // What was read must write and read back to the same tensors.
    guard (try? net.validate()) != nil else { return }
    let provenance = Provenance(sourceFile: "fuzz.dnk", sourceSHA256: "", sourceFormat: "dnk", producer: "fuzz")
    guard let encoded = try? DNKModelWriter().encode(net, dtype: .f32, provenance: provenance) else {
        fatalError("a validated graph did not encode")
    }
    guard let again = try? DNKReader.load(data: encoded, path: "again.dnk"),
        again.tensors.map(bits) == net.tensors.map(bits), again.layerNames == net.layerNames
    else {
        fatalError("a .dnk round trip changed the graph")
    }
}
