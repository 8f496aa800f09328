import Foundation

/// Reads a `.dnk` file: maps it, checks every region's checksum and every offset and size against
/// the file (schemas/dnk-format.md, "Reading"), and rebuilds the canonical graph.
public enum DNKReader {
    static let maximumMetadata = 1 << 20
    static let maximumTensors = 4096
    static let maximumElements = 1 << 31

    public static func load(path: String) throws -> DenseNet {
        try loadWithCache(path: path).net
    }

    /// The graph and, when the file holds one in the format this DenseKit writes, its executor cache
    /// (`ExecutorCache`), which stays in the mapped file.
    public static func loadWithCache(path: String) throws -> (net: DenseNet, cache: ExecutorCache?) {
        try decode(try FileMapping.map(path: path), path: path, restoringTransfer: false)
    }

    /// `loadWithCache` for a `.dnk` held in memory (its cache is used only where `data` starts at a
    /// 64-byte boundary).
    public static func loadWithCache(data: Data, path: String) throws -> (net: DenseNet, cache: ExecutorCache?) {
        try decode(data, path: path, restoringTransfer: false)
    }

    /// Reads a `.dnk` held in memory (float32 weights keep referring to `data`). With
    /// `restoringTransfer`, the source description and tensor names that an isolated import
    /// (`ImportIsolation`) stored in the metadata replace the `.dnk`'s own.
    public static func load(data: Data, path: String) throws -> DenseNet {
        try load(data: data, path: path, restoringTransfer: false)
    }

    static func load(data: Data, path: String, restoringTransfer: Bool) throws -> DenseNet {
        try decode(data, path: path, restoringTransfer: restoringTransfer).net
    }

    /// `data` decoded in place: its float32 tensors and executor cache keep referring to it.
    static func decode(_ data: Data, path: String, restoringTransfer: Bool) throws -> (net: DenseNet, cache: ExecutorCache?) {
        let file = MappedFile(data)
        return try data.withUnsafeBytes { raw in try decode(raw, file: file, path: path, restoringTransfer: restoringTransfer) }
    }

    /// Float32 weight tensors stay in the map (zero-copy); 1-D and 16-bit ones are decoded.
    static func decode(_ raw: UnsafeRawBufferPointer, file: MappedFile, path: String,
                       restoringTransfer: Bool) throws -> (net: DenseNet, cache: ExecutorCache?) {
        let n = raw.count
        guard n >= DNKWriter.headerSize else { throw ImportError.malformed("truncated: \(n) bytes, the header alone is 128") }
        guard Array(raw[0..<8]) == DNKWriter.magic else { throw ImportError.malformed("not a .dnk file (bad magic)") }
        func u16(_ at: Int) -> Int { Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self))) }
        func u32(_ at: Int) -> Int { Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
        func u64(_ at: Int) throws -> Int {
            let v = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self))
            guard v <= UInt64(Int.max / 4) else { throw ImportError.malformed("header: value \(v) at byte \(at) out of range") }
            return Int(v)
        }
        func hash(_ start: Int, _ end: Int) -> UInt64 { XXH64.hash(UnsafeRawBufferPointer(rebasing: raw[start..<end])) }
        func stored(_ at: Int) -> UInt64 { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self)) }

        let major = u16(8), minor = u16(10)
        guard major == 1 || major == 2 else {
            throw ImportError.mismatch("header", expected: "format version 1.x or 2.x", found: "\(major).\(minor)", kind: .unsupported)
        }
        guard hash(0, 120) == stored(120) else { throw ImportError.malformed("header checksum mismatch (corrupt header)") }
        guard u32(12) == DNKWriter.headerSize, u32(44) == DNKWriter.entrySize else { throw ImportError.malformed("header: bad header or entry size") }
        let metaOffset = try u64(16), metaLength = try u64(24), tableOffset = try u64(32), count = u32(40)
        let dataOffset = try u64(48), dataLength = try u64(56), fileLength = try u64(64)
        guard fileLength == n else {
            throw ImportError.malformed("file is \(n) bytes, the header says \(fileLength) (\(n < fileLength ? "truncated" : "trailing bytes"))")
        }
        guard metaOffset == DNKWriter.headerSize, metaLength <= maximumMetadata else { throw ImportError.malformed("header: metadata of \(metaLength) bytes") }
        guard count > 0, count <= maximumTensors else { throw ImportError.malformed("header: \(count) tensors") }
        guard tableOffset == DNKWriter.align(metaOffset + metaLength, 8),
              dataOffset == DNKWriter.align(tableOffset + count * DNKWriter.entrySize, 64),
              dataOffset + dataLength == fileLength else { throw ImportError.malformed("header: regions are not contiguous") }
        guard hash(metaOffset, tableOffset) == stored(72) else { throw ImportError.malformed("metadata checksum mismatch (corrupt metadata)") }
        guard hash(tableOffset, dataOffset) == stored(80) else { throw ImportError.malformed("tensor table checksum mismatch (corrupt table)") }

        var tensors: [String: Tensor] = [:]
        var regions: [(name: String, start: Int, end: Int, checksum: UInt64)] = []
        var expectedOffset = dataOffset
        var storedBytes = 0, parameters = 0
        for index in 0..<count {
            let at = tableOffset + index * DNKWriter.entrySize
            let nameBytes = raw[at..<(at + DNKWriter.nameSize)].prefix { $0 != 0 }
            guard let name = String(bytes: nameBytes, encoding: .utf8), !name.isEmpty else { throw ImportError.malformed("table entry \(index): bad name") }
            let dtypeCode = Int(raw[at + 48]), rank = Int(raw[at + 49])
            guard let dtype = [DType.f32, .f16, .bf16][safe: dtypeCode] else { throw ImportError(.malformed, subject: "tensor '\(name)'", problem: "unknown dtype \(dtypeCode)") }
            guard (1...4).contains(rank) else { throw ImportError(.malformed, subject: "tensor '\(name)'", problem: "rank \(rank)") }
            var shape: [Int] = []
            var elements = 1
            for d in 0..<rank {
                let v = u32(at + 52 + 4 * d)
                let (p, o) = elements.multipliedReportingOverflow(by: v)
                guard v > 0, !o, p <= maximumElements else { throw ImportError(.malformed, subject: "tensor '\(name)'", problem: "bad shape") }
                elements = p
                shape.append(v)
            }
            let offset = try u64(at + 68), length = try u64(at + 76)
            guard length == elements * dtype.size else { throw ImportError(.malformed, subject: "tensor '\(name)'", problem: "length \(length) for shape \(shape) of \(dtype.rawValue)") }
            guard offset == expectedOffset, offset % 64 == 0, offset + length <= n else {
                throw ImportError.mismatch("tensor '\(name)'", expected: "data at offset \(expectedOffset), where the previous tensor ends", found: "offset \(offset)", kind: .malformed)
            }
            let end = index + 1 < count ? DNKWriter.align(offset + length, 64) : n
            guard end <= n, index + 1 < count || DNKWriter.align(offset + length, 64) == n else {
                throw ImportError(.malformed, subject: "tensor '\(name)'", problem: "data does not end at the end of the file")
            }
            regions.append((name, offset, end, stored(at + 84)))
            guard tensors[name] == nil else { throw ImportError.malformed("tensor '\(name)' appears twice") }
            switch dtype {
            case .f32 where rank >= 2:
                tensors[name] = Tensor(name: name, shape: shape, mapped: file, offset: offset, count: elements)
            default:
                let stored: StoredFloat = dtype == .f32 ? .f32 : dtype == .f16 ? .f16 : .bf16
                tensors[name] = Tensor(name: name, shape: shape, storedDType: dtype, values: stored.decode(raw, at: offset, count: elements))
            }
            if name != ExecutorCache.tensorName {
                storedBytes += length
                parameters += elements
            }
            expectedOffset = end
        }
        // The tensors' checksums, computed on all cores (most of a load is reading the file once).
        let computed = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: regions.count)
        defer { computed.deallocate() }
        let base = UInt(bitPattern: raw.baseAddress), out = UInt(bitPattern: computed.baseAddress)
        let bounds = regions.map { ($0.start, $0.end) }
        DispatchQueue.concurrentPerform(iterations: min(ProcessInfo.processInfo.activeProcessorCount, regions.count)) { part in
            let parts = min(ProcessInfo.processInfo.activeProcessorCount, bounds.count)
            let p = UnsafeRawPointer(bitPattern: base), results = UnsafeMutablePointer<UInt64>(bitPattern: out)
            for i in stride(from: part, to: bounds.count, by: parts) {
                results?[i] = LaneHash.hash(UnsafeRawBufferPointer(start: p.map { $0 + bounds[i].0 }, count: bounds[i].1 - bounds[i].0))
            }
        }
        for (i, r) in regions.enumerated() where computed[i] != r.checksum {
            throw ImportError(.malformed, subject: "tensor '\(r.name)'", problem: "checksum mismatch (corrupt data or padding)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: Data(raw[metaOffset..<(metaOffset + metaLength)])) as? [String: Any],
              let structure = object["structure"] as? [String: Any] else { throw ImportError.malformed("metadata is not the expected JSON") }
        let provenance = object["provenance"] as? [String: Any] ?? [:]
        let producer = "densekit \(provenance["densekitVersion"] as? String ?? "?") from \(provenance["sourceFormat"] as? String ?? "?") (\(provenance["producer"] as? String ?? "?"))"
        var notes: [String] = []
        if let file = provenance["sourceFile"] as? String, let sha = provenance["sourceSHA256"] as? String {
            notes.append("converted from \(file) (SHA-256 \(sha)) at \(provenance["convertedAt"] as? String ?? "?")")
        }
        let cache = try executorCache(object["executorCache"], tensors[ExecutorCache.tensorName], raw: raw, file: file)
        if let cache { notes.append("executor cache: \(cache.buffers) prepared buffers, \(cache.count * 4 / 1_000_000) MB") }
        let tensorCount = tensors[ExecutorCache.tensorName] == nil ? count : count - 1
        var source = ModelSource(path: path, format: .dnk, producer: producer, storedParameters: parameters,
                                 storedBytes: storedBytes, storedTensors: tensorCount, notes: notes)
        if restoringTransfer {
            guard let transfer = object[ImportIsolation.transferKey] as? [String: Any], let names = transfer["tensorNames"] as? [String: String],
                  let description = transfer["source"],
                  let original = try? JSONDecoder().decode(ModelSource.self, from: JSONSerialization.data(withJSONObject: description)) else {
                throw ImportError.malformed("the isolated reader's output has no source description")
            }
            for (canonical, name) in names { tensors[canonical]?.name = name }
            source = original
        }
        return (try CanonicalLayout.rebuild(structure, tensors, source: source), cache)
    }

    /// The executor cache the metadata's `executorCache` describes (schemas/dnk-format.md), its manifest
    /// checked against the `executor.cache` tensor; nil when the file has none, when it is in another
    /// format than this DenseKit's, or when the file is not mapped at a 64-byte boundary (a copy in memory).
    static func executorCache(_ description: Any?, _ tensor: Tensor?, raw: UnsafeRawBufferPointer, file: MappedFile) throws -> ExecutorCache? {
        guard let description else {
            if tensor != nil { throw ImportError(.malformed, subject: "tensor '\(ExecutorCache.tensorName)'", problem: "no executorCache in the metadata describes it") }
            return nil
        }
        func bad(_ problem: String) -> ImportError { ImportError(.malformed, subject: "metadata executorCache", problem: problem) }
        guard let d = description as? [String: Any], let format = d["format"] as? String else { throw bad("no format") }
        guard format == ExecutorCache.format else { return nil }
        guard let tensor, let (offset, count) = tensor.mappedRegion, tensor.shape.count == 2 else {
            throw bad("describes a tensor '\(ExecutorCache.tensorName)' of float32 rows that the file does not hold")
        }
        guard let buffers = d["buffers"] as? [String: Any], !buffers.isEmpty, buffers.count <= maximumTensors * 4 else { throw bad("no buffers") }
        var entries: [String: (offset: Int, count: Int)] = [:]
        for (name, value) in buffers {
            guard let pair = value as? [Int], pair.count == 2, pair[0] >= 0, pair[1] > 0, pair[0] % 16 == 0,
                  pair[0] <= count - pair[1] else {
                throw bad("buffer '\(name)': expected [offset, count] inside the \(count) floats of the cache, offset a multiple of 16, found \(value)")
            }
            entries[name] = (pair[0], pair[1])
        }
        guard let base = raw.baseAddress, UInt(bitPattern: base + offset) % 64 == 0 else { return nil }
        return ExecutorCache(base: (base + offset).assumingMemoryBound(to: Float.self), count: count, owner: file, entries: entries)
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
