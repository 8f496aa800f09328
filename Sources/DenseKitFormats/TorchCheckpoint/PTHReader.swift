import DenseKitGraph
import Foundation

/// Reads a PyTorch `.pth` in both formats `torch.save` writes, through `Unpickler` (nothing is ever
/// executed), then `StateDictImporter` builds the graph.
///
/// - zip (torch >= 1.6): an uncompressed zip with `<archive>/data.pkl` (the pickle), `<archive>/data/<key>`
///   (each storage's raw bytes), `<archive>/byteorder`, `<archive>/version`.
/// - legacy (`_use_new_zipfile_serialization=False`): pickles in a row (the magic number, the
///   protocol version, system info, the object, the list of storage keys), then each storage as a
///   little-endian u64 element count and its raw bytes.
/// Storages are named by persistent ids `('storage', torch.FloatStorage, key, location, count)`;
/// tensors are `_rebuild_tensor_v2(storage, offset, size, stride, ...)`. A training dict around the
/// weights (`state_dict`, `model`, `model_state_dict`, `net`, next to epoch, optimizer state, ...)
/// is unwrapped; its other entries are skipped, even when they hold tensors. A whole module
/// (`torch.save(model)`) and a TorchScript archive (`torch.jit.save`: the same zip layout with `code/`
/// beside `data.pkl`, which is never read) are walked into a state_dict (`ModuleTree`).
public enum PTHReader {
    /// torch.save's legacy magic number 0x1950a86a20f9469cfc6c, little-endian.
    package static let legacyMagic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]

    public static func load(path: String) throws -> DenseNet {
        try load(data: FileMapping.contents(path: path), path: path)
    }

    public static func load(data: Data, path: String) throws -> DenseNet {
        let (object, storages, format) = try data.starts(with: ZipArchive.signature) ? readZip(data) : readLegacy(data)
        let (weights, wrapper, tree) = try stateDict(object)
        var entries: [String: StateDictImporter.Entry] = [:]
        var parameters = 0
        var bytes = 0
        for (key, value) in weights {
            guard case .tensor(let storage, let type, let count, let offset, let shape, let stride) = value else {
                continue
            }
            let entry = try tensor(
                key, storages[storage], type: type, storageCount: count, offset: offset, shape: shape, stride: stride)
            if case .float(let float) = entry {
                parameters += float.count
                bytes += float.storedBytes
            }
            entries[key] = entry
        }
        var notes = [
            "read without running the pickle: classes are only names, and only the calls a checkpoint uses are "
                + "interpreted"
        ]
        if let wrapper {
            notes.append("a training checkpoint: the weights are its '\(wrapper)' entry; its other entries are skipped")
        }
        if let tree {
            notes.append(
                "a whole module of class '\(tree.displayedClassName)': its parameters and buffers read as a state_dict"
                    + (format == torchScript ? " (its code/ is never read)" : ""))
            if !tree.skipped.isEmpty {
                notes.append(
                    "skipped the top module's own tensors (no layer's weights): "
                        + tree.skipped.map { "'\($0)'" }.joined(separator: ", "))
            }
        }
        let producer = format == torchScript ? "TorchScript (torch.jit.save)" : "torch.save (\(format) format)"
        let source = ModelSource(
            path: path, format: .pth, producer: producer, storedParameters: parameters,
            storedBytes: bytes, storedTensors: entries.count, notes: notes)
        return try StateDictImporter.build(entries, source: source, blurPool: tree?.hasBlurPool)
    }

    /// The object and the storages' bytes of a zip-format file.
    package static func readZip(_ data: Data) throws -> (Unpickler.Value, [String: Data], String) {
        let zip = try ZipArchive(data: data)
        guard let pickleName = zip.entries.keys.filter({ $0.hasSuffix("/data.pkl") }).min(by: { $0.count < $1.count }),
            let pickle = try zip.member(pickleName)
        else {
            throw ImportError.mismatch(
                .part("zip archive"), expected: "a torch.save archive (<name>/data.pkl)", found: "no data.pkl")
        }
        let prefix = String(pickleName.dropLast("data.pkl".count))
        if let order = try zip.member(prefix + "byteorder"), String(decoding: order, as: UTF8.self) != "little" {
            throw ImportError.mismatch(
                .entry(kind: "zip entry", name: prefix + "byteorder"), expected: "little",
                found: String(decoding: order.prefix(16), as: UTF8.self))
        }
        var parser = Unpickler(pickle)
        let object = try parser.loadObject()
        var storages: [String: Data] = [:]
        for name in zip.entries.keys where name.hasPrefix(prefix + "data/") {
            storages[String(name.dropFirst((prefix + "data/").count))] = try zip.member(name)
        }
        let scripted = zip.entries.keys.contains { $0.hasPrefix(prefix + "code/") || $0 == prefix + "constants.pkl" }
        return (object, storages, scripted ? torchScript : "zip")
    }

    /// The format name `readZip` gives a TorchScript archive.
    package static let torchScript = "TorchScript"

    /// The object and the storages' bytes of a legacy-format file.
    package static func readLegacy(_ data: Data) throws -> (Unpickler.Value, [String: Data], String) {
        var parser = Unpickler(data)
        guard case .bigInt(let magic) = try parser.load(), magic == legacyMagic else {
            throw ImportError.mismatch(
                .file, expected: "torch.save's legacy magic number", found: "another pickle")
        }
        _ = try parser.load()  // protocol version
        _ = try parser.load()  // system info
        let object = try parser.loadObject()
        guard case .list(let keyValues) = try parser.load() else {
            throw ImportError.malformed("the legacy storage key list is missing")
        }
        var at = parser.position
        var storages: [String: Data] = [:]
        for value in keyValues {
            guard let key = value.string else {
                throw ImportError.malformed("a legacy storage key that is not a string")
            }
            // Each storage: a u64 element count, then its bytes; the element size is the storage type's.
            guard let size = elementSize(of: object, key: key) else {
                throw ImportError.mismatch(
                    .entry(kind: "storage", name: key),
                    expected: "a tensor of the object that views it (for its type)", found: "none")
            }
            guard data.count - at >= 8 else {
                throw ImportError.mismatch(
                    .entry(kind: "storage", name: key), expected: "an element count", found: "the end of the file")
            }
            let count = data.withUnsafeBytes {
                UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self))
            }
            at += 8
            guard count <= UInt64(data.count - at) / UInt64(size) else {
                throw ImportError.mismatch(
                    .entry(kind: "storage", name: key),
                    expected: "at most \((data.count - at) / size) elements (what the file holds)",
                    found: "\(count)")
            }
            let length = Int(count) * size
            storages[key] = data.subdata(in: (data.startIndex + at)..<(data.startIndex + at + length))
            at += length
        }
        return (object, storages, "legacy")
    }

    /// The element size of the storage `key`, from the first tensor that views it.
    private static func elementSize(of object: Unpickler.Value, key: String) -> Int? {
        switch object {
        case .tensor(let storage, let type, _, _, _, _): return storage == key ? size(of: type) : nil
        case .dict(let pairs): return pairs.lazy.compactMap { elementSize(of: $0.value, key: key) }.first
        case .list(let items), .tuple(let items): return items.lazy.compactMap { elementSize(of: $0, key: key) }.first
        case .object(_, let state): return elementSize(of: state, key: key)
        default: return nil
        }
    }

    package static func size(of type: String) -> Int? {
        [
            "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "DoubleStorage": 8, "LongStorage": 8,
            "IntStorage": 4,
            "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1,
        ][type]
    }

    /// The state_dict: the object itself when it maps names to tensors (or is a whole module), else its
    /// `state_dict`, `model`, `model_state_dict` or `net` entry; the wrapper's key and the module tree
    /// are returned too.
    package static func stateDict(_ object: Unpickler.Value) throws -> (
        [(String, Unpickler.Value)], String?, ModuleTree?
    ) {
        if let tree = try ModuleTree(object) { return (tree.weights, nil, tree) }
        func weights(_ value: Unpickler.Value) -> [(String, Unpickler.Value)]? {
            guard case .dict(let pairs) = value else { return nil }
            let named = pairs.compactMap { p in p.key.string.map { ($0, p.value) } }
            guard named.count == pairs.count, named.contains(where: { if case .tensor = $0.1 { true } else { false } })
            else { return nil }
            return named
        }
        if let found = weights(object), found.contains(where: { $0.0.hasSuffix("conv0.weight") }) {
            return (found, nil, nil)
        }
        // A training dict around the weights, as a state_dict or a whole module ({'model': model, ...}).
        if case .dict(let pairs) = object {
            for wrapper in ["state_dict", "model_state_dict", "model", "net"] {
                guard let entry = pairs.first(where: { $0.key.string == wrapper })?.value else { continue }
                if let tree = try ModuleTree(entry) { return (tree.weights, wrapper, tree) }
                if let found = weights(entry) { return (found, wrapper, nil) }
            }
        }
        if let found = weights(object) { return (found, nil, nil) }
        throw ImportError.mismatch(
            .part("checkpoint"),
            expected:
                """
                a state_dict (names to tensors), or a dict with one under 'state_dict', 'model_state_dict', \
                'model' or 'net'
                """,
            found: "no such dict")
    }

    /// A tensor from its storage: contiguous views only, every size checked against the storage.
    package static func tensor(
        _ key: String, _ storage: Data?, type: String, storageCount: Int, offset: Int, shape: [Int], stride: [Int]
    ) throws -> StateDictImporter.Entry {
        let subject = ImportSubject.tensor(key)
        guard let size = size(of: type) else {
            throw ImportError.mismatch(subject, expected: "a float or integer storage", found: type)
        }
        var count = 1
        var expected = [Int](repeating: 0, count: shape.count)
        for i in shape.indices.reversed() {
            expected[i] = count
            let (product, overflow) = count.multipliedReportingOverflow(by: shape[i])
            guard !overflow, product <= 1 << 31 else {
                throw ImportError.mismatch(
                    subject, expected: "at most 2^31 values", found: "shape \(shape)")
            }
            count = product
        }
        guard stride == expected || count <= 1 else {
            throw ImportError.mismatch(
                subject, expected: "a contiguous view (stride \(expected))", found: "stride \(stride)")
        }
        // The counts come from the pickle: compared by division and overflow-checked addition, never multiplied.
        let (end, overflow) = offset.addingReportingOverflow(count)
        guard let storage, !overflow, end <= storageCount, storage.count % size == 0,
            storage.count / size == storageCount
        else {
            throw ImportError.mismatch(
                subject,
                expected:
                    """
                    elements \(offset) to \(overflow ? "beyond 2^63" : String(end)) of its storage, which the pickle \
                    says holds \(storageCount)
                    """,
                found: storage.map { "a storage of \($0.count / size) elements" } ?? "no such storage")
        }
        let start = storage.startIndex + offset * size
        let raw = storage.subdata(in: start..<(start + count * size))
        let floats: [String: StoredFloat] = [
            "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16, "DoubleStorage": .f64,
        ]
        guard let stored = floats[type] else { return .integer(shape: shape) }
        return .float(
            Tensor(
                name: key, shape: shape, storedDType: stored.dtype,
                values: raw.withUnsafeBytes { stored.decode($0, count: count) }))
    }
}
