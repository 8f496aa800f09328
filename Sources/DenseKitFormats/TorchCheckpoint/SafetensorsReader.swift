import DenseKitGraph
import Foundation

/// Reads a `.safetensors` file (huggingface/safetensors): the state_dict's tensors, then
/// `StateDictImporter` builds the graph.
///
/// Layout: 8 bytes little-endian u64 N, N bytes of UTF-8 JSON starting with `{` (padded with
/// spaces), then the byte buffer. Each JSON entry is `{"dtype", "shape", "data_offsets": [begin,
/// end]}` with offsets into the buffer; `__metadata__` maps strings to strings. The header is capped
/// at 100 MB as the reference reader does; every size is overflow-checked; the regions must cover
/// the buffer exactly, in order, without holes or overlaps. Float32 tensors at 4-byte aligned offsets
/// are used in place from the memory map.
public enum SafetensorsReader {
    package static let maximumHeader = 100_000_000
    package static let maximumElements = 1 << 31

    package enum Element {
        case float(StoredFloat)
        case integer(Int)

        package init?(_ dtype: String) {
            switch dtype {
            case "F32": self = .float(.f32)
            case "F16": self = .float(.f16)
            case "BF16": self = .float(.bf16)
            case "F64": self = .float(.f64)
            case "BOOL", "U8", "I8": self = .integer(1)
            case "I16", "U16": self = .integer(2)
            case "I32", "U32": self = .integer(4)
            case "I64", "U64": self = .integer(8)
            default: return nil
            }
        }

        package var size: Int {
            switch self {
            case .float(let element): return element.size
            case .integer(let bytes): return bytes
            }
        }
    }

    public static func load(path: String) throws -> DenseNet {
        try load(data: FileMapping.contents(path: path), path: path)
    }

    public static func load(data: Data, path: String) throws -> DenseNet {
        let (entries, metadata) = try read(data)
        var parameters = 0
        var bytes = 0
        for case .float(let tensor) in entries.values {
            parameters += tensor.count
            bytes += tensor.storedBytes
        }
        var notes: [String] = []
        if !metadata.isEmpty {
            notes.append(
                "metadata: "
                    + metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))
        }
        let source = ModelSource(
            path: path, format: .safetensors, producer: producer(metadata),
            storedParameters: parameters, storedBytes: bytes, storedTensors: entries.count, notes: notes)
        let head = try metadata[headMetadataKey].map {
            try HeadDescription(jsonString: $0, subject: .entry(kind: "__metadata__", name: headMetadataKey))
        }
        let blurPool = try metadata[blurPoolMetadataKey].map { value -> Bool in
            guard let known = ["true": true, "false": false][value] else {
                throw ImportError.mismatch(
                    .entry(kind: "__metadata__", name: blurPoolMetadataKey), expected: "true or false",
                    found: "'\(value.prefix(40))'")
            }
            return known
        }
        return try StateDictImporter.build(entries, source: source, head: head, blurPool: blurPool)
    }

    /// "format pt", or "densekit 0.2.0 from onnx (format pt)" for a file DenseKit wrote.
    package static func producer(_ metadata: [String: String]) -> String {
        let format = metadata["format"].map { "format \($0)" } ?? "no format in __metadata__"
        guard let version = metadata["densekit.version"] else { return format }
        return "densekit \(version) from \(metadata["densekit.source_format"] ?? "an unknown format") (\(format))"
    }

    /// The `__metadata__` key under which DenseKit's writer records the head (`HeadDescription`).
    package static let headMetadataKey = "densekit.head"
    /// The key under which it records, for a deep stem, whether a blur pool follows (a state_dict cannot say).
    package static let blurPoolMetadataKey = "densekit.stem_blur_pool"

    /// The tensors by name and the `__metadata__` strings.
    package static func read(_ data: Data) throws -> (
        entries: [String: StateDictImporter.Entry], metadata: [String: String]
    ) {
        let fileSize = data.count
        guard fileSize >= 8 else {
            throw ImportError.mismatch(
                .part("header"), expected: "at least 8 bytes (the header length)", found: "\(fileSize) bytes")
        }
        let length = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard length <= UInt64(maximumHeader), Int(length) <= fileSize - 8 else {
            throw ImportError.mismatch(
                .part("header"),
                expected:
                    "a JSON header of at most \(min(maximumHeader, fileSize - 8)) bytes "
                    + "(the cap, and what the file holds)",
                found: "\(length) bytes")
        }
        let headerEnd = 8 + Int(length)
        let headerBytes = data.subdata(in: (data.startIndex + 8)..<(data.startIndex + headerEnd))
        guard headerBytes.first == UInt8(ascii: "{"),
            let object = try? JSONSerialization.jsonObject(with: headerBytes) as? [String: Any]
        else {
            throw ImportError.mismatch(
                .part("header"), expected: "a JSON object", found: "\(length) bytes that are not one")
        }
        var metadata: [String: String] = [:]
        if let metadataValue = object["__metadata__"] {
            guard let strings = metadataValue as? [String: String] else {
                throw ImportError.mismatch(
                    .part("__metadata__"), expected: "a map of strings to strings", found: "\(type(of: metadataValue))")
            }
            metadata = strings
        }
        let buffer = fileSize - headerEnd
        var regions: [(name: String, begin: Int, end: Int, element: Element, shape: [Int])] = []
        // In name order, so that of two bad entries the same one is named on every run (a dictionary's
        // order changes from run to run).
        for (name, value) in object.sorted(by: { $0.key < $1.key }) where name != "__metadata__" {
            let subject = ImportSubject.tensor(name)
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2
            else {
                throw ImportError.mismatch(
                    subject, expected: "{dtype, shape, data_offsets: [begin, end]}", found: "another entry")
            }
            guard let element = Element(dtype) else {
                throw ImportError.mismatch(
                    subject, expected: "dtype F32, F16, BF16, F64 or an integer type", found: dtype)
            }
            guard shape.count <= 8, shape.allSatisfy({ $0 >= 0 }) else {
                throw ImportError.mismatch(
                    subject, expected: "at most 8 non-negative dims", found: "shape \(shape)")
            }
            var count = 1
            for d in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow, product <= maximumElements else {
                    throw ImportError.mismatch(
                        subject, expected: "at most 2^31 values", found: "shape \(shape)")
                }
                count = product
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= buffer else {
                throw ImportError.mismatch(
                    subject, expected: "data_offsets within the \(buffer)-byte buffer", found: "\(offsets)")
            }
            guard end - begin == count * element.size else {
                throw ImportError.mismatch(
                    subject, expected: "\(count * element.size) bytes for shape \(shape) of \(dtype)",
                    found: "\(end - begin)")
            }
            regions.append((name, begin, end, element, shape))
        }
        // The regions cover the buffer exactly: in order of offset, each begins where the previous ends.
        regions.sort { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var expected = 0
        for r in regions {
            guard r.begin == expected else {
                throw ImportError.mismatch(
                    .tensor(r.name),
                    expected: "data at byte \(expected) of the buffer (regions contiguous, not overlapping)",
                    found: "data_offsets [\(r.begin), \(r.end)]")
            }
            expected = r.end
        }
        guard expected == buffer else {
            throw ImportError.mismatch(
                .part("buffer"), expected: "\(expected) bytes (the end of the last tensor)", found: "\(buffer)")
        }
        let file = MappedFile(data)
        var entries: [String: StateDictImporter.Entry] = [:]
        data.withUnsafeBytes { raw in
            for r in regions {
                let at = headerEnd + r.begin
                let count = (r.end - r.begin) / r.element.size
                switch r.element {
                case .integer:
                    entries[r.name] = .integer(shape: r.shape)
                case .float(.f32) where at % 4 == 0 && r.shape.count >= 2:
                    entries[r.name] = .float(
                        Tensor(name: r.name, shape: r.shape, mapped: file, offset: at, count: count))
                case .float(let stored):
                    entries[r.name] = .float(
                        Tensor(
                            name: r.name, shape: r.shape, storedDType: stored.dtype,
                            values: stored.decode(raw, at: at, count: count)))
                }
            }
        }
        return (entries, metadata)
    }
}
