import DenseKit
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// The .dnk writer and reader: exact round trip, sizes, and every corruption refused naming its region.
@Suite struct DNKFormatTests {
    /// Converts a fixture into a temporary folder; returns the folder and the .dnk path.
    func converted(_ fixture: String, dtype: DType = .f32) throws -> (URL, String, Converter.Outcome) {
        let folder = try Fixtures.temporaryFolder()
        let out = folder.appendingPathComponent("model.dnk").path
        var converter = Converter()
        converter.writer = DNKModelWriter()
        converter.dtype = dtype
        converter.acceptDeviations = true
        let outcome = try converter.convert(source: Fixtures.path(fixture), to: out)
        return (folder, out, outcome)
    }

    @Test(arguments: [
        "tv-tiny-legacy-opset17.onnx", "tv-tiny-legacy-opset11-unfolded.onnx", "keras3-tiny.keras",
        "cifar-plain-tiny-legacy-opset17.onnx",
    ])
    func roundTripIsExact(_ fixture: String) throws {
        let (folder, path, outcome) = try converted(fixture)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(outcome.validation.bitIdentical)
        let source = try ModelLoader.load(path: Fixtures.path(fixture))
        let loaded = try ModelLoader.load(path: path)
        #expect(loaded.source.format == .dnk)
        #expect(loaded.tensors.map(\.values) == source.tensors.map(\.values))
        #expect(loaded.tensors.map(\.shape) == source.tensors.map(\.shape))
        #expect(loaded.layerNames == source.layerNames)
        #expect(loaded.input == source.input)
        #expect(loaded.head.softmax == source.head.softmax)
        #expect(loaded.stem.pool == source.stem.pool && loaded.stem.conv.pads == source.stem.conv.pads)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["model.dnk"])
    }

    @Test func sizesAreCompact() throws {
        let (folder, _, f32) = try converted("tv-tiny-legacy-opset11-unfolded.onnx")
        defer { try? FileManager.default.removeItem(at: folder) }
        let (folder16, _, f16) = try converted("tv-tiny-legacy-opset11-unfolded.onnx", dtype: .f16)
        defer { try? FileManager.default.removeItem(at: folder16) }
        // Tiny nets pay for their header, table and 64-byte alignment; the full-size bounds are checked below.
        #expect(f32.bytes > f32.rawTensorBytes && f32.bytes < f32.rawTensorBytes + 40_000)
        #expect(f16.bytes < f32.bytes)
        #expect(f16.validation.maxRel <= Converter.tolerance(for: .f16) && f16.validation.top1Agreement == 1)
    }

    @Test(.enabled(if: Fixtures.full != nil, "full-size fixtures not built"))
    func fullSizeTargets() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = try #require(Fixtures.full) + "/densenet121.pth"
        var converter = Converter()
        let f32 = try converter.convert(source: source, to: folder.appendingPathComponent("a.dnk").path)
        converter.writer = DNKModelWriter()
        converter.dtype = .f16
        let f16 = try converter.convert(source: source, to: folder.appendingPathComponent("b.dnk").path)
        #expect(f32.report.spec.name == "densenet121" && f32.report.matches)
        #expect(Double(f32.bytes) <= 1.02 * Double(f32.rawTensorBytes))
        #expect(Double(f16.bytes) <= 0.52 * Double(f32.rawTensorBytes))
        #expect(f32.validation.bitIdentical)
        // DenseNet-121's tensors are 32,250,016 bytes of float32.
        #expect(f32.rawTensorBytes == 32_250_016)
    }

    /// The little-endian u64 at byte `at` of a file.
    func u64(_ fileData: Data, _ at: Int) -> Int {
        fileData.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self))) }
    }

    func u32(_ fileData: Data, _ at: Int) -> Int {
        fileData.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt32.self))) }
    }

    /// The name of table entry `index` (48 bytes, NUL-padded, from the table's start; 96 bytes an entry).
    func tableName(_ fileData: Data, _ index: Int) -> String {
        let start = u64(fileData, 32) + 96 * index
        return String(decoding: fileData[start..<(start + 48)].prefix { $0 != 0 }, as: UTF8.self)
    }

    /// Every byte class: header, metadata, table, tensor data, padding; and truncations.
    @Test func everyCorruptionIsRefused() throws {
        let (folder, path, _) = try converted("tv-tiny-legacy-opset17.onnx")
        defer { try? FileManager.default.removeItem(at: folder) }
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        let metaOffset = u64(good, 16)
        let tableOffset = u64(good, 32)
        let dataOffset = u64(good, 48)
        // The first tensor's end and the padding after it.
        let firstLength = u64(good, tableOffset + 76)
        let entries = u32(good, 40)
        let major = Int(good[8]) | Int(good[9]) << 8
        let minor = Int(good[10]) | Int(good[11]) << 8
        func corrupt(_ part: String, _ what: String) -> ImportError {
            .malformed(.part(part), problem: "checksum mismatch (corrupt \(what))")
        }
        func corruptData(_ entry: Int) -> ImportError {
            .malformed(.tensor(tableName(good, entry)), problem: "checksum mismatch (corrupt data or padding)")
        }
        let cases: [(Int, ImportError)] = [
            (0, .malformed(.file, problem: "not a .dnk file (bad magic)")),
            (
                9,
                .mismatch(
                    .part("header"), expected: "format version 1.x to 7.x", found: "\(major ^ 0x1000).\(minor)")
            ),
            (20, corrupt("header", "header")), (119, corrupt("header", "header")),
            (metaOffset + 3, corrupt("metadata", "metadata")), (tableOffset + 2, corrupt("tensor table", "table")),
            (tableOffset + 70, corrupt("tensor table", "table")),
            (dataOffset + 5, corruptData(0)), (dataOffset + firstLength + 1, corruptData(0)),
            (good.count - 1, corruptData(entries - 1)),
        ]
        let bad = folder.appendingPathComponent("bad.dnk")
        for (at, error) in cases {
            var copy = good
            copy[at] ^= 0x10
            try copy.write(to: bad)
            #expect(throws: error, "byte \(at)") { try DNKReader.load(path: bad.path) }
        }
        for cut in stride(from: 0, to: good.count, by: max(1, good.count / 61)) + [good.count - 1] {
            try good.prefix(cut).write(to: bad)
            #expect(throws: ImportError.self, "cut at \(cut)") { try DNKReader.load(path: bad.path) }
        }
        // Every single byte of the file is covered: flipping any one of them is caught.
        for at in stride(from: 0, to: good.count, by: 7) {
            var copy = good
            copy[at] ^= 0x01
            try copy.write(to: bad)
            #expect(throws: ImportError.self, "flip at \(at)") { try DNKReader.load(path: bad.path) }
        }
    }

    /// Table entries rewritten with valid checksums (as a forger would): the structural checks alone
    /// must refuse them.
    @Test func forgedTablesAreRefused() throws {
        let (folder, path, _) = try converted("tv-tiny-legacy-opset17.onnx")
        defer { try? FileManager.default.removeItem(at: folder) }
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        func put(_ fileData: inout Data, _ at: Int, _ bytes: [UInt8]) {
            fileData.replaceSubrange(at..<(at + bytes.count), with: bytes)
        }
        func le32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
        let tableOffset = u64(good, 32)
        let dataOffset = u64(good, 48)
        /// Applies `edit` to the table, then recomputes the table and header checksums.
        func forged(_ edit: (inout Data) -> Void) -> Data {
            var fileData = good
            edit(&fileData)
            let table = fileData.subdata(in: tableOffset..<dataOffset).withUnsafeBytes { XXH64.hash($0) }
            put(&fileData, 80, withUnsafeBytes(of: table.littleEndian, Array.init))
            let header = fileData.prefix(120).withUnsafeBytes { XXH64.hash($0) }
            put(&fileData, 120, withUnsafeBytes(of: header.littleEndian, Array.init))
            return fileData
        }
        let entry = { (i: Int) in tableOffset + 96 * i }
        let firstName = tableName(good, 0)
        let rank = Int(good[entry(0) + 49])
        let dims = (0..<rank).map { u32(good, entry(0) + 52 + 4 * $0) }
        let cases: [(Data, ImportError?)] = [
            (good, nil),
            // 2^20 x 2^20 elements: refused from the table, before anything is read or allocated.
            (
                forged { fileData in
                    put(&fileData, entry(0) + 49, [4])
                    put(&fileData, entry(0) + 52, le32(1 << 20) + le32(1 << 20) + le32(1) + le32(1))
                }, .malformed(.tensor(firstName), problem: "bad shape")
            ),
            (
                forged { fileData in put(&fileData, entry(0) + 52, le32(UInt32(dims[0]) + 1)) },
                .malformed(
                    .tensor(firstName),
                    problem: "length \(u64(good, entry(0) + 76)) for shape \([dims[0] + 1] + dims.dropFirst()) of f32")
            ),
            (
                forged { fileData in put(&fileData, entry(1), Array(good[entry(0)..<(entry(0) + 48)])) },
                .malformed(.tensor(firstName), problem: "appears twice")
            ),
            (
                forged { fileData in
                    put(&fileData, entry(0), Array("stem.conv.wrong".utf8) + [UInt8](repeating: 0, count: 48 - 15))
                }, .malformed(.tensor(firstName), problem: "is missing")
            ),
            (
                forged { fileData in put(&fileData, entry(0) + 48, [7]) },
                .malformed(.tensor(firstName), problem: "unknown dtype 7")
            ),
            (
                forged { fileData in
                    put(&fileData, entry(0) + 68, withUnsafeBytes(of: UInt64(1 << 40).littleEndian, Array.init))
                },
                .mismatch(
                    .tensor(firstName), expected: "data at offset \(dataOffset), where the previous tensor ends",
                    found: "offset \(1 << 40)")
            ),
        ]
        let bad = folder.appendingPathComponent("forged.dnk")
        for (i, (data, error)) in cases.enumerated() {
            try data.write(to: bad)
            if let error {
                #expect(throws: error, "case \(i)") { try DNKReader.load(path: bad.path) }
            } else {
                #expect(throws: Never.self) { try DNKReader.load(path: bad.path) }
            }
        }
    }

    /// Metadata rewritten with valid checksums (as a forger would), its length unchanged: a value of
    /// the wrong type is refused by its key path, and nesting thousands deep is an error, not a crash.
    @Test func forgedMetadataIsRefusedByItsKeyPath() throws {
        let (folder, path, _) = try converted("tv-tiny-legacy-opset17.onnx")
        defer { try? FileManager.default.removeItem(at: folder) }
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        let metaStart = u64(good, 16)
        let metaEnd = metaStart + u64(good, 24)
        let json = String(decoding: good[metaStart..<metaEnd], as: UTF8.self)
        func forged(_ text: String) -> Data {
            var fileData = good
            fileData.replaceSubrange(metaStart..<metaEnd, with: Data(text.utf8))
            func put(_ at: Int, _ value: UInt64) {
                fileData.replaceSubrange(at..<(at + 8), with: withUnsafeBytes(of: value.littleEndian, Array.init))
            }
            put(72, fileData.subdata(in: metaStart..<u64(fileData, 32)).withUnsafeBytes { XXH64.hash($0) })
            put(120, fileData.prefix(120).withUnsafeBytes { XXH64.hash($0) })
            return fileData
        }
        #expect(json.contains("\"relu\":true"))
        let depth = json.utf8.count / 2
        // The metadata's key path, then what the decoder says (Foundation's words after the path).
        let cases: [(String, String, String)] = [
            (json.replacingOccurrences(of: "\"relu\":true", with: "\"relu\":\"ok\""), "structure.stem.relu: ", ""),
            (
                json.replacingOccurrences(of: "\"layout\":\"nchw\"", with: "\"layout\":\"nxyz\""),
                "structure.input.layout: ", ""
            ),
            (json.replacingOccurrences(of: "\"structure\"", with: "\"structurf\""), "no 'structure'", "no 'structure'"),
            (
                String(repeating: "[", count: depth) + String(repeating: "]", count: json.utf8.count - depth),
                "not JSON: Too many nested arrays", ""
            ),
        ]
        let bad = folder.appendingPathComponent("forged.dnk")
        for (i, (text, start, whole)) in cases.enumerated() {
            #expect(text.utf8.count == json.utf8.count)
            try forged(text).write(to: bad)
            let error = #expect(throws: ImportError.self, "case \(i)") { try DNKReader.load(path: bad.path) }
            guard case .malformed(.part("metadata"), let problem)? = error else {
                Issue.record("case \(i): \(String(describing: error))")
                continue
            }
            #expect(whole.isEmpty ? problem.hasPrefix(start) : problem == whole, "case \(i): \(problem)")
        }
    }

    /// A file as DenseKit 0.1 wrote it (version 1.0: no `head` in the metadata) still reads, with
    /// the paper's head: made here from a 1.1 file by blanking the `head` key (JSON allows the spaces)
    /// and writing 1.0 in the header and metadata, with the checksums recomputed.
    @Test func aVersionOnePointZeroFileStillReads() throws {
        let (folder, path, _) = try converted("keras3-tiny.keras")
        defer { try? FileManager.default.removeItem(at: folder) }
        var fileData = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect([fileData[8], fileData[10]] == [1, 1])
        let metaStart = u64(fileData, 16)
        let metaEnd = metaStart + u64(fileData, 24)
        var json = String(decoding: fileData[metaStart..<metaEnd], as: UTF8.self)
        let head = "\"head\":{\"activations\":[\"softmax\"],\"pool\":\"average\"},"
        #expect(json.contains(head) && json.contains("\"version\":\"1.1\""))
        json = json.replacingOccurrences(of: head, with: String(repeating: " ", count: head.utf8.count))
            .replacingOccurrences(of: "\"version\":\"1.1\"", with: "\"version\":\"1.0\"")
        fileData.replaceSubrange(metaStart..<metaEnd, with: Data(json.utf8))
        fileData[10] = 0
        func put(_ at: Int, _ value: UInt64) {
            fileData.replaceSubrange(at..<(at + 8), with: withUnsafeBytes(of: value.littleEndian, Array.init))
        }
        put(72, fileData.subdata(in: metaStart..<u64(fileData, 32)).withUnsafeBytes { XXH64.hash($0) })
        put(120, fileData.prefix(120).withUnsafeBytes { XXH64.hash($0) })
        let old = folder.appendingPathComponent("old.dnk").path
        try fileData.write(to: URL(fileURLWithPath: old))
        let oldModel = try ModelLoader.load(path: old)
        let newModel = try ModelLoader.load(path: Fixtures.path("keras3-tiny.keras"))
        #expect(
            oldModel.head.summary == "global avg pool, linear 16 -> 10, softmax"
                && oldModel.head.summary == newModel.head.summary)
        #expect(oldModel.tensors.map(\.values) == newModel.tensors.map(\.values))
    }

    @Test func checksumsAreXXH64() {
        // Published XXH64 test vectors (seed 0).
        #expect(XXH64.hash(UnsafeRawBufferPointer(start: nil, count: 0)) == 0xEF46_DB37_51D8_E999)
        let abc = Array("abc".utf8)
        #expect(abc.withUnsafeBytes { XXH64.hash($0) } == 0x44BC_2CF5_AD77_0999)
    }

    @Test func laneHashSeesEveryFlippedBit() {
        var rng = SeededRandom(9)
        var bytes = (0..<3000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let original = bytes.withUnsafeBytes { LaneHash.hash($0) }
        for at in stride(from: 0, to: bytes.count, by: 37) {
            for bit in 0..<8 {
                bytes[at] ^= 1 << bit
                #expect(bytes.withUnsafeBytes { LaneHash.hash($0) } != original, "byte \(at) bit \(bit)")
                bytes[at] ^= 1 << bit
            }
        }
        #expect(bytes.withUnsafeBytes { LaneHash.hash($0) } == original)
        #expect(bytes.prefix(2999).withUnsafeBytes { LaneHash.hash($0) } != original)
    }

    @Test func sha256() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let file = folder.appendingPathComponent("abc").path
        try Data("abc".utf8).write(to: URL(fileURLWithPath: file))
        #expect(
            try SourceFingerprint.sha256(ofFile: file)
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        try Data(repeating: 0x61, count: 1_000_000).write(to: URL(fileURLWithPath: file))
        #expect(
            try SourceFingerprint.sha256(ofFile: file)
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
