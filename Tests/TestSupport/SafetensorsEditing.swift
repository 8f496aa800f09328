import Foundation

/// Edits of safetensors fixtures: the file is split into its entries, one thing is changed, and a
/// consistent file is written again (header length, JSON, offsets, buffer), so only that one thing
/// is wrong; or the header JSON is edited in place of a well-formed buffer, to break the layout itself.
public enum SafetensorsEditing {
    public struct Entry {
        public var dtype: String
        public var shape: [Int]
        public var bytes: Data
        public init(dtype: String, shape: [Int], bytes: Data) {
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }
    }
    public struct Failure: Error { public var description: String }

    /// The entries (by name) and `__metadata__` of a safetensors file.
    public static func entries(_ data: Data) throws -> (entries: [String: Entry], metadata: [String: String]?) {
        let (header, buffer) = try split(data)
        var out: [String: Entry] = [:]
        for (name, value) in header where name != "__metadata__" {
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                let shape = info["shape"] as? [Int],
                let offsets = info["data_offsets"] as? [Int]
            else { throw Failure(description: "entry \(name)") }
            out[name] = Entry(
                dtype: dtype, shape: shape,
                bytes: buffer.subdata(in: (buffer.startIndex + offsets[0])..<(buffer.startIndex + offsets[1])))
        }
        return (out, header["__metadata__"] as? [String: String])
    }

    /// A consistent file holding `entries` (in name order), as the reference writer lays it out.
    public static func file(_ entries: [String: Entry], metadata: [String: String]? = nil) throws -> Data {
        var header: [String: Any] = [:]
        var buffer = Data()
        var offset = 0
        for name in entries.keys.sorted() {
            let entry = entries[name]!
            header[name] = [
                "dtype": entry.dtype, "shape": entry.shape, "data_offsets": [offset, offset + entry.bytes.count],
            ]
            buffer += entry.bytes
            offset += entry.bytes.count
        }
        if let metadata { header["__metadata__"] = metadata }
        return try assemble(header, buffer)
    }

    /// The fixture's header JSON edited by `edit`, in front of its own buffer.
    public static func withHeader(_ data: Data, _ edit: (inout [String: Any]) -> Void) throws -> Data {
        var (header, buffer) = try split(data)
        edit(&header)
        return try assemble(header, buffer)
    }

    /// The fixture's entries changed by `edit`, written as a consistent file.
    public static func rewritten(_ fixture: String, _ edit: (inout [String: Entry]) -> Void) throws -> Data {
        let (entry, metadata) = try entries(try Fixtures.data(fixture))
        var changed = entry
        edit(&changed)
        return try file(changed, metadata: metadata)
    }

    static func split(_ data: Data) throws -> ([String: Any], Data) {
        let headerLength = Int(
            data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
        guard
            let header = try JSONSerialization.jsonObject(
                with: data.subdata(in: (data.startIndex + 8)..<(data.startIndex + 8 + headerLength))) as? [String: Any]
        else {
            throw Failure(description: "header")
        }
        return (header, data.subdata(in: (data.startIndex + 8 + headerLength)..<data.endIndex))
    }

    static func assemble(_ header: [String: Any], _ buffer: Data) throws -> Data {
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json += Data(repeating: 0x20, count: (8 - json.count % 8) % 8)
        return withUnsafeBytes(of: UInt64(json.count).littleEndian) { Data($0) } + json + buffer
    }
}
