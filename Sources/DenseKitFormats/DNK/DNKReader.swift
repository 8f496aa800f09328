import DenseKitGraph
import Foundation

/// Reads a `.dnk` file: maps it, checks every offset and size against the file and every region's
/// checksum (schemas/dnk-format.md, "Reading"), and rebuilds the canonical graph. Nothing is returned
/// before every byte of the file has been checked.
public enum DNKReader {
    package static let maximumMetadata = 1 << 20
    package static let maximumTensors = 4096
    package static let maximumElements = 1 << 31
    /// What the name of an executor cache buffer starts with: files written before 0.3 stored the
    /// executor's prepared weights as such tensors. They are checked like every tensor, then ignored.
    package static let legacyCachePrefix = "cache:"

    public static func load(path: String) throws -> DenseNet {
        try load(data: try FileMapping.map(path: path), path: path)
    }

    /// Reads a `.dnk` held in memory (float32 weights keep referring to `data`).
    public static func load(data: Data, path: String) throws -> DenseNet {
        let file = MappedFile(data)
        return try data.withUnsafeBytes { raw in try decode(raw, file: file, path: path) }
    }

    /// Float32 tensors stay in the map (zero-copy); 16-bit ones are decoded.
    private static func decode(_ raw: UnsafeRawBufferPointer, file: MappedFile, path: String) throws -> DenseNet {
        let fileSize = raw.count
        guard fileSize >= DNKWriter.headerSize else {
            throw ImportError.malformed("truncated: \(fileSize) bytes, the header alone is 128")
        }
        guard Array(raw[0..<8]) == DNKWriter.magic else { throw ImportError.malformed("not a .dnk file (bad magic)") }
        func u16(_ at: Int) -> Int { Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt16.self))) }
        func u32(_ at: Int) -> Int { Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
        func u64(_ at: Int) throws -> Int {
            let stored = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self))
            guard stored <= UInt64(Int.max / 4) else {
                throw ImportError.mismatch(.byte(at), expected: "a header value up to 2^61", found: "\(stored)")
            }
            return Int(stored)
        }
        func hash(_ start: Int, _ end: Int) -> UInt64 { XXH64.hash(UnsafeRawBufferPointer(rebasing: raw[start..<end])) }
        func stored(_ at: Int) -> UInt64 {
            UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at, as: UInt64.self))
        }

        let major = u16(8)
        let minor = u16(10)
        guard (1...7).contains(major) else {
            throw ImportError.mismatch(
                .part("header"), expected: "format version 1.x to 7.x", found: "\(major).\(minor)")
        }
        guard hash(0, 120) == stored(120) else {
            throw ImportError.malformed(.part("header"), problem: "checksum mismatch (corrupt header)")
        }
        guard u32(12) == DNKWriter.headerSize, u32(44) == DNKWriter.entrySize else {
            throw ImportError.malformed(.part("header"), problem: "bad header or entry size")
        }
        let metaOffset = try u64(16)
        let metaLength = try u64(24)
        let tableOffset = try u64(32)
        let count = u32(40)
        let dataOffset = try u64(48)
        let dataLength = try u64(56)
        let fileLength = try u64(64)
        guard fileLength == fileSize else {
            throw ImportError.malformed(
                "file is \(fileSize) bytes, the header says \(fileLength) "
                    + "(\(fileSize < fileLength ? "truncated" : "trailing bytes"))"
            )
        }
        guard metaOffset == DNKWriter.headerSize, metaLength <= maximumMetadata else {
            throw ImportError.malformed(.part("header"), problem: "metadata of \(metaLength) bytes")
        }
        guard count > 0, count <= maximumTensors else {
            throw ImportError.malformed(.part("header"), problem: "\(count) tensors")
        }
        guard tableOffset == DNKWriter.align(metaOffset + metaLength, 8),
            dataOffset == DNKWriter.align(tableOffset + count * DNKWriter.entrySize, 64),
            dataOffset + dataLength == fileLength
        else { throw ImportError.malformed(.part("header"), problem: "regions are not contiguous") }
        guard hash(metaOffset, tableOffset) == stored(72) else {
            throw ImportError.malformed(.part("metadata"), problem: "checksum mismatch (corrupt metadata)")
        }
        guard hash(tableOffset, dataOffset) == stored(80) else {
            throw ImportError.malformed(.part("tensor table"), problem: "checksum mismatch (corrupt table)")
        }

        // First every entry's place in the file, with its checksum, so that the checks start at once;
        // names are made afterwards (or for an error).
        func nameBytes(_ index: Int) -> Slice<UnsafeRawBufferPointer> { tableName(raw, tableOffset, index) }
        func shape(_ index: Int, rank: Int) -> [Int] {
            (0..<rank).map { u32(tableOffset + index * DNKWriter.entrySize + 52 + 4 * $0) }
        }
        // An entry's name as errors give it (the checksums' too, after this function has returned).
        let name: @Sendable (Int) -> String = { [file] index in
            file.data.withUnsafeBytes { String(decoding: tableName($0, tableOffset, index), as: UTF8.self) }
        }
        let cachePrefix = Array(legacyCachePrefix.utf8)
        var entries: [(type: DNKStoredType, rank: Int, offset: Int, elements: Int, isCache: Bool)] = []
        var checks = TensorChecksums(name: name)
        var expectedOffset = dataOffset
        entries.reserveCapacity(count)
        for index in 0..<count {
            let at = tableOffset + index * DNKWriter.entrySize
            let dtypeCode = Int(raw[at + 48])
            let rank = Int(raw[at + 49])
            guard let type = DNKStoredType(code: dtypeCode) else {
                throw ImportError.malformed(.tensor(name(index)), problem: "unknown dtype \(dtypeCode)")
            }
            guard (1...4).contains(rank) else {
                throw ImportError.malformed(.tensor(name(index)), problem: "rank \(rank)")
            }
            var elements = 1
            for d in 0..<rank {
                let dimension = u32(at + 52 + 4 * d)
                let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
                guard dimension > 0, !overflow, product <= maximumElements else {
                    throw ImportError.malformed(.tensor(name(index)), problem: "bad shape")
                }
                elements = product
            }
            let offset = try u64(at + 68)
            let length = try u64(at + 76)
            guard length == elements * type.size else {
                throw ImportError.malformed(
                    .tensor(name(index)),
                    problem: "length \(length) for shape \(shape(index, rank: rank)) of \(type.name)")
            }
            guard offset == expectedOffset, offset % 64 == 0, offset + length <= fileSize else {
                throw ImportError.mismatch(
                    .tensor(name(index)),
                    expected: "data at offset \(expectedOffset), where the previous tensor ends",
                    found: "offset \(offset)")
            }
            let end = index + 1 < count ? DNKWriter.align(offset + length, 64) : fileSize
            guard end <= fileSize, index + 1 < count || DNKWriter.align(offset + length, 64) == fileSize else {
                throw ImportError.malformed(
                    .tensor(name(index)), problem: "data does not end at the end of the file")
            }
            let region = TensorChecksums.Region(entry: index, start: offset, end: end, checksum: stored(at + 84))
            expectedOffset = end
            let isCache = memcmp(raw.baseAddress! + at, cachePrefix, cachePrefix.count) == 0
            guard !isCache || type == .float(.f32) else {
                throw ImportError.malformed(
                    .tensor(name(index)), problem: "an executor cache buffer of \(type.name), not f32")
            }
            checks.regions.append(region)
            entries.append((type, rank, offset, elements, isCache))
        }
        // The checksums run on the other cores while this thread makes the tensors, parses the metadata
        // and rebuilds the graph (which read only the checked table and metadata and the tensors'
        // sizes); this thread then joins them, and a mismatch is the error reported, whatever else fails.
        let checking = checks.start(raw, keeping: file)
        let decoded = Result { () throws -> DenseNet in
            let metadata = try DNKMetadata.decode(
                UnsafeRawBufferPointer(rebasing: raw[metaOffset..<(metaOffset + metaLength)]))
            var tensors: [String: Tensor] = [:]
            var legacyCacheBuffers = 0
            var storedBytes = 0
            var parameters = 0
            tensors.reserveCapacity(count)
            for (index, e) in entries.enumerated() {
                if e.isCache {
                    legacyCacheBuffers += 1
                    continue
                }
                guard let name = String(validating: nameBytes(index), as: UTF8.self), !name.isEmpty else {
                    throw ImportError.malformed(.part("tensor table entry \(index)"), problem: "bad name")
                }
                let tensor: Tensor
                switch e.type {
                case .float(.f32):
                    tensor = Tensor(
                        name: name, shape: shape(index, rank: e.rank), mapped: file, offset: e.offset,
                        count: e.elements)
                case .float(let dtype):
                    tensor = Tensor(
                        name: name, shape: shape(index, rank: e.rank), storedDType: dtype,
                        values: (dtype == .f16 ? StoredFloat.f16 : .bf16).decode(raw, at: e.offset, count: e.elements))
                case .integer(let storage):
                    tensor = try quantizedTensor(
                        name, shape: shape(index, rank: e.rank), storage: storage,
                        codes: e.type.codes(raw, at: e.offset, count: e.elements),
                        parameters: metadata.structure.quantization?.tensors[name])
                }
                guard tensors.updateValue(tensor, forKey: name) == nil else {
                    throw ImportError.malformed(.tensor(name), problem: "appears twice")
                }
                storedBytes += e.elements * e.type.size
                parameters += e.elements
            }
            let source = ModelSource(
                path: path, format: .dnk, producer: metadata.producer, storedParameters: parameters,
                storedBytes: storedBytes, storedTensors: count - legacyCacheBuffers, notes: metadata.notes)
            var net = try CanonicalLayout.rebuild(metadata.structure, tensors, source: source)
            if let summary = net.quantizationSummary {
                net.source.notes.append(
                    "int8: \(summary); runs with \(net.integerArithmetic.framework)'s arithmetic")
            }
            return net
        }
        try checking.finish()
        return try decoded.get()
    }

    /// A quantised weight: its codes, and the parameters the metadata gives it (which must be of its type and fit
    /// its shape), dequantised to its values.
    private static func quantizedTensor(
        _ name: String, shape: [Int], storage: Quantization.Storage, codes: [Int32],
        parameters: DNKMetadata.Parameters?
    ) throws -> Tensor {
        guard let q = parameters?.quantization, q.storage == storage else {
            throw ImportError.mismatch(
                .tensor(name), expected: "\(storage.rawValue) parameters in structure.quantization.tensors",
                found: parameters.map { "\($0.storage.rawValue) ones" } ?? "none")
        }
        if let axis = q.axis, !shape.indices.contains(axis) {
            throw ImportError.mismatch(
                .tensor(name), expected: "a quantisation axis of its \(shape.count) dimensions", found: "axis \(axis)")
        }
        if let (_, expected, found) = q.problem(axisLength: q.axis.map { shape[$0] }) {
            throw ImportError.mismatch(.tensor(name), expected: expected, found: found)
        }
        var tensor = Tensor(name: name, shape: shape, values: QuantizedCodes.dequantize(codes, q, shape: shape))
        tensor.quantized = QuantizedCodes(quantization: q, codes: codes)
        return tensor
    }

    /// The name bytes of table entry `index` (up to the first zero).
    private static func tableName(_ raw: UnsafeRawBufferPointer, _ tableOffset: Int, _ index: Int) -> Slice<
        UnsafeRawBufferPointer
    > {
        let at = tableOffset + index * DNKWriter.entrySize
        return UnsafeRawBufferPointer(rebasing: raw[at..<(at + DNKWriter.nameSize)]).prefix { $0 != 0 }
    }
}

extension Array {
    package subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
