import DenseKit
import DenseKitFormats
import Foundation
import TestSupport
import Testing

/// Broken files of every format through every command: exit 2, nothing on stdout, exactly one line
/// `error: <file>: <what>`, and no output file left behind. The files are made here from the fixtures.
@Suite struct CorruptFileCLITests {
    let input = Fixtures.path("input-64.npy")

    @Test func everyCommandRefusesEveryBrokenFormat() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        func write(_ name: String, _ data: Data) throws -> String { try Fixtures.write(data, as: name, in: folder) }
        let onnx = try Fixtures.data("tv-tiny-legacy-opset17.onnx")
        let h5 = try Fixtures.data("keras3-tiny.h5")
        let keras = try Fixtures.data("keras3-tiny.keras")
        var flippedKeras = keras
        flippedKeras[keras.count / 3] ^= 0x5A
        let dnkPath = folder.appendingPathComponent("good.dnk").path
        #expect(
            try densekit([
                "convert", Fixtures.path("tv-tiny-legacy-opset17.onnx"), "-o", dnkPath, "--accept-deviations",
            ]).status == 0)
        var dnk = try Data(contentsOf: URL(fileURLWithPath: dnkPath))
        dnk[dnk.count - 100] ^= 0x01
        let broken = [
            try write("cut.onnx", onnx.prefix(onnx.count / 2)),
            try write("garbage.onnx", Data((0..<2000).map { UInt8(($0 * 7919) % 251) })),
            try write("cut.h5", h5.prefix(h5.count / 2)),
            try write("notes.h5", Data("this is not HDF5".utf8)),
            try write("flipped.keras", flippedKeras),
            try write("cut.keras", keras.prefix(keras.count - 40)),
            try write("notes.keras", Data("this is not a zip archive".utf8)),
            try write("flipped.dnk", dnk),
            try write("cut.dnk", dnk.prefix(200)),
            try write("empty.onnx", Data()),
            try write("cut.safetensors", try Fixtures.data("tv-tiny.safetensors").prefix(20_000)),
            try write("cut.pth", try Fixtures.data("tv-tiny.pth").prefix(30_000)),
            try write("cut-legacy.pth", try Fixtures.data("tv-tiny-legacy.pth").prefix(30_000)),
        ]
        try FileManager.default.removeItem(atPath: dnkPath)
        let out = folder.appendingPathComponent("out").path
        for file in broken {
            try expectUsageError(["inspect", file], file: file)
            try expectUsageError(["verify", file], file: file)
            try expectUsageError(["run", file, "--input", input, "--output", out + ".npy"], file: file)
            try expectUsageError(
                ["diff", file, Fixtures.path("tv-tiny-legacy-opset17.onnx"), "--input", input], file: file)
            try expectUsageError(
                ["diff", Fixtures.path("tv-tiny-legacy-opset17.onnx"), file, "--input", input], file: file)
            try expectUsageError(["convert", file, "-o", out + ".dnk", "--accept-deviations"], file: file)
        }
        // A broken input array, through the commands that read one.
        let npy = try Fixtures.data("input-64.npy")
        let cutInput = try write("cut.npy", npy.prefix(npy.count - 7))
        try expectUsageError(
            ["run", Fixtures.path("tv-tiny-legacy-opset17.onnx"), "--input", cutInput, "--output", out + ".npy"],
            file: cutInput)
        try expectUsageError(
            [
                "diff", Fixtures.path("tv-tiny-legacy-opset17.onnx"), Fixtures.path("tv-tiny-legacy-opset17.onnx"),
                "--input", cutInput,
            ], file: cutInput)
        // Nothing was written: the folder holds exactly the broken files.
        let left = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(left == (broken + [cutInput]).map { ($0 as NSString).lastPathComponent }.sorted())
    }

    /// `.dnk` metadata edited and resealed (its checksums recomputed, as a forger would): the JSON
    /// parser and the metadata's structure refuse it, naming the byte or what is missing.
    @Test func resealedDNKMetadataIsRefused() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let good = folder.appendingPathComponent("good.dnk").path
        #expect(
            try densekit(["convert", Fixtures.path("tv-tiny-legacy-opset17.onnx"), "-o", good, "--accept-deviations"])
                .status == 0)
        let file = try Data(contentsOf: URL(fileURLWithPath: good))
        func u64(_ fileData: Data, _ at: Int) -> Int {
            fileData.withUnsafeBytes {
                Int(UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self)))
            }
        }
        let metaStart = u64(file, 16)
        let metaLength = u64(file, 24)
        let metadata = String(decoding: file[metaStart..<(metaStart + metaLength)], as: UTF8.self)
        #expect(metadata.hasSuffix("}") && metadata.contains("\"structure\":{"))
        /// The file with its metadata text replaced by `text` (of the same length), resealed.
        func resealed(_ text: String) throws -> String {
            var fileData = file
            fileData.replaceSubrange(metaStart..<(metaStart + metaLength), with: Data(text.utf8))
            func put(_ at: Int, _ value: UInt64) {
                fileData.replaceSubrange(at..<(at + 8), with: withUnsafeBytes(of: value.littleEndian, Array.init))
            }
            put(72, fileData.subdata(in: metaStart..<u64(fileData, 32)).withUnsafeBytes { XXH64.hash($0) })
            put(120, fileData.prefix(120).withUnsafeBytes { XXH64.hash($0) })
            return try Fixtures.write(fileData, as: "edited.dnk", in: folder)
        }
        #expect(try densekit(["inspect", try resealed(metadata)]).status == 0)
        let cases = [
            (String(metadata.dropLast()) + " ", "metadata: not JSON: Unexpected end of file"),
            ("[" + metadata.dropFirst(), "metadata: not JSON: "),
            (metadata.replacingOccurrences(of: "\"structure\":{", with: "\"structurX\":{"), "metadata: no 'structure'"),
        ]
        for (text, message) in cases {
            let edited = try resealed(text)
            try expectUsageError(["inspect", edited], file: edited, mentions: message)
            try expectUsageError(
                ["run", edited, "--input", input, "--output", folder.appendingPathComponent("out.npy").path],
                file: edited, mentions: message)
        }
    }

    /// HDF5 damaged byte by byte (libhdf5 reads it in the isolated child, as for every command):
    /// each cut or flip either still reads or ends in exit 2 with one line, never a crash or a hang.
    @Test(arguments: ["keras3-tiny.h5", "keras2-tiny.h5", "keras3-tiny.weights.h5", "keras3-tiny.keras"])
    func hdf5CutsAndFlips(_ fixture: String) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let good = try Fixtures.data(fixture)
        let path = folder.appendingPathComponent(fixture).path
        var refused = 0
        func check(_ data: Data, _ what: String) throws {
            try data.write(to: URL(fileURLWithPath: path))
            let outcome = try densekit(["inspect", path], environment: ["DENSEKIT_IMPORT_DEADLINE": "20"])
            #expect(outcome.status == 0 || outcome.status == 2, "\(what): \(outcome.status) \(outcome.stderr)")
            if outcome.status == 2 {
                refused += 1
                #expect(
                    outcome.stderr.hasPrefix("error: \(path): ") && outcome.stderr.split(separator: "\n").count == 1,
                    "\(what): \(outcome.stderr)")
            }
        }
        let step = max(1, good.count / 25)
        for cut in stride(from: 0, to: good.count, by: step) { try check(good.prefix(cut), "cut at \(cut)") }
        #expect(refused == (good.count + step - 1) / step, "every cut is refused")
        for at in stride(from: step / 2, to: good.count, by: step) {
            var copy = good
            copy[at] ^= 0xFF
            try check(copy, "flip at \(at)")
        }
    }
}
