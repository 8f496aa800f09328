import DenseKit
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// A `.dnk` is checked whole before any command uses it: every byte of it is covered by a checksum,
/// `run` included, and the executor cache that files written before 0.3 carry is checked and ignored.
@Suite struct DNKIntegrityTests {
    /// `fixture` converted to a `.dnk` in a new folder.
    func converted(_ fixture: String, _ extra: [String] = []) throws -> (folder: URL, path: String) {
        let folder = try Fixtures.temporaryFolder()
        let out = folder.appendingPathComponent("m.dnk").path
        let outcome = try densekit(["convert", Fixtures.path(fixture), "-o", out, "--accept-deviations"] + extra)
        #expect(outcome.status == 0, "\(outcome.stderr)")
        return (folder, out)
    }

    /// `densekit run MODEL` on the tiny input: its status, stderr, and the output it wrote (nil if none).
    func run(_ model: String, in folder: URL, _ extra: [String] = []) throws -> (
        status: Int32, stderr: String, y: [Float]?
    ) {
        let out = folder.appendingPathComponent("y.npy").path
        try? FileManager.default.removeItem(atPath: out)
        let outcome = try densekit(["run", model, "--input", Fixtures.path("input-64.npy"), "-o", out] + extra)
        return (
            outcome.status, outcome.stderr,
            FileManager.default.fileExists(atPath: out) ? try NPY.read(path: out).values : nil
        )
    }

    /// Twenty bytes chosen anywhere in the file (seeded: header, metadata, table, tensor data and
    /// padding all come up), each flipped alone: `run` refuses every copy with exit 2 and one line
    /// naming the file, and writes no output; the intact file runs.
    @Test(arguments: [[], ["--exact"]])
    func runRefusesEveryFlippedByte(_ mode: [String]) throws {
        let (folder, path) = try converted("tv-tiny-legacy-opset17.onnx")
        defer { try? FileManager.default.removeItem(at: folder) }
        let intact = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(try run(path, in: folder, mode).status == 0)
        var generator = SeededRandom(37)
        let corrupt = folder.appendingPathComponent("corrupt.dnk").path
        for _ in 0..<20 {
            var bytes = intact
            let at = Int.random(in: 0..<bytes.count, using: &generator)
            bytes[at] ^= UInt8.random(in: 1...255, using: &generator)
            try bytes.write(to: URL(fileURLWithPath: corrupt))
            let outcome = try run(corrupt, in: folder, mode)
            let lines = outcome.stderr.split(separator: "\n")
            #expect(outcome.status == 2 && outcome.y == nil, "byte \(at): status \(outcome.status), \(outcome.stderr)")
            #expect(lines.count == 1 && lines[0].hasPrefix("error: \(corrupt): "), "byte \(at): \(outcome.stderr)")
        }
    }

    /// A flipped byte in a weight names that tensor, for `run` as for `inspect`.
    @Test(arguments: ["block1.layer1.conv.weight", "block2.layer1.norm.gamma", "head.classifier.bias"])
    func aFlippedWeightIsNamed(_ tensor: String) throws {
        let (folder, path) = try converted("tv-tiny-legacy-opset17.onnx")
        defer { try? FileManager.default.removeItem(at: folder) }
        var fileData = try Data(contentsOf: URL(fileURLWithPath: path))
        fileData[try #require(DNKTable(fileData).entries.first { $0.name == tensor }).offset] ^= 0x40
        let corrupt = folder.appendingPathComponent("corrupt.dnk").path
        try fileData.write(to: URL(fileURLWithPath: corrupt))
        let message = "error: \(corrupt): tensor '\(tensor)': checksum mismatch (corrupt data or padding)\n"
        let outcome = try run(corrupt, in: folder)
        #expect(outcome.status == 2 && outcome.stderr == message && outcome.y == nil, "\(outcome.stderr)")
        let inspect = try densekit(["inspect", corrupt])
        #expect(inspect.status == 2 && inspect.stderr == message, "\(inspect.stderr)")
    }

    /// A file as 0.2 wrote it, with executor cache tensors (`cache:<buffer>`) and their description in
    /// the metadata, reads as the same graph and runs to the same output; its cache bytes are checked
    /// like every other byte.
    @Test func aFileWithALegacyExecutorCacheReadsAndIsChecked() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let net = try ModelLoader.load(path: Fixtures.path("tv-tiny-legacy-opset17.onnx"))
        let provenance = Provenance(
            sourceFile: "tv-tiny-legacy-opset17.onnx", sourceSHA256: "", sourceFormat: "onnx",
            producer: "test")
        let written = try DNKModelWriter().metadata(net, dtype: .f32, provenance: provenance).json()
        var object = try #require(JSONSerialization.jsonObject(with: written) as? [String: Any])
        object["executorCache"] = ["format": "densekit-plan-3", "mode": "fast"]
        let metadata = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        let buffer = Tensor(name: "cache:stem.conv.packed", shape: [1, 100], values: (0..<100).map(Float.init))
        let legacy = try DNKWriter.encode(net, dtype: .f32, metadata: metadata, extra: [(buffer.name, buffer)])
        let old = folder.appendingPathComponent("old.dnk").path
        let new = folder.appendingPathComponent("new.dnk").path
        try legacy.write(to: URL(fileURLWithPath: old))
        try DNKModelWriter().encode(net, dtype: .f32, provenance: provenance).write(to: URL(fileURLWithPath: new))
        let oldRun = try run(old, in: folder)
        let newRun = try run(new, in: folder)
        #expect(oldRun.status == 0 && newRun.status == 0, "\(oldRun.stderr)")
        #expect(try #require(oldRun.y).map(\.bitPattern) == (try #require(newRun.y)).map(\.bitPattern))
        #expect(
            try ModelLoader.load(path: old).source.storedTensors == ModelLoader.load(path: new).source.storedTensors)

        var flipped = legacy
        flipped[try #require(DNKTable(legacy).entries.first { $0.name == buffer.name }).offset + 8] ^= 1
        try flipped.write(to: URL(fileURLWithPath: old))
        let refused = try run(old, in: folder)
        #expect(refused.status == 2 && refused.y == nil)
        #expect(
            refused.stderr == "error: \(old): tensor '\(buffer.name)': checksum mismatch (corrupt data or padding)\n")
    }

    /// The written file holds the tensors and little else: at most 2% over their bytes at full size
    /// (`DNKFormatTests.fullSizeTargets`), a few kilobytes of header, metadata and table at tiny size.
    @Test func theFileIsTheTensorsAndLittleElse() throws {
        let (folder, path) = try converted("tv-tiny-legacy-opset17.onnx")
        defer { try? FileManager.default.removeItem(at: folder) }
        let table = try DNKTable(try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(!table.entries.contains { $0.name.hasPrefix("cache:") })
        let net = try ModelLoader.load(path: path)
        #expect(table.entries.count == net.tensors.count)
        #expect(try densekit(["inspect", path]).stdout.contains("executor cache") == false)
    }
}

/// The tensor table of a `.dnk` (schemas/dnk-format.md), read here independently of `DNKReader`.
struct DNKTable {
    struct Entry { var name: String, offset: Int }
    var entries: [Entry] = []

    init(_ fileData: Data) throws {
        func u32(_ at: Int) -> Int {
            fileData.withUnsafeBytes {
                Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
            }
        }
        func u64(_ at: Int) -> Int {
            fileData.withUnsafeBytes {
                Int(UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self)))
            }
        }
        let table = u64(32)
        let count = u32(40)
        let entrySize = u32(44)
        for index in 0..<count {
            let at = table + index * entrySize
            let name = String(decoding: fileData[at..<(at + 48)].prefix { $0 != 0 }, as: UTF8.self)
            entries.append(Entry(name: name, offset: u64(at + 68)))
        }
    }
}
