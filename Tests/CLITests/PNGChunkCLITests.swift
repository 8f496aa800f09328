import DenseKitFormats
import Foundation
import TestSupport
import Testing

/// PNG chunks judged as Pillow judges them (#42.10): variants of a photo, each made here, are decoded
/// by `densekit preprocess` exactly when Pillow (in the torch venv) decodes them, and then to the
/// original's values.
@Suite struct PNGChunkCLITests {
    struct Chunk {
        var type: [UInt8]
        var body: [UInt8]
        var crc: [UInt8]?
        var bytes: [UInt8] { pngChunk(type, body, crc: crc) }
    }

    func chunks(_ png: [UInt8]) -> [Chunk] {
        var out: [Chunk] = []
        var at = 8
        while at + 12 <= png.count {
            let length = png[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) }
            let body = Array(png[(at + 8)..<(at + 8 + length)])
            out.append(
                Chunk(
                    type: Array(png[(at + 4)..<(at + 8)]), body: body,
                    crc: Array(png[(at + 8 + length)..<(at + 12 + length)])))
            at += 12 + length
        }
        return out
    }

    /// Whether Pillow opens and converts each file (one line per file: "ok" or the error).
    func pillowDecodes(_ files: [String]) throws -> [Bool] {
        let python = "\(Frameworks.cache)/venv-torch/bin/python"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments =
            [
                "-c",
                """
                import sys
                from PIL import Image
                for f in sys.argv[1:]:
                    try:
                        Image.open(f).convert("RGB"); print("ok")
                    except Exception as e:
                        print("refused")
                """,
            ] + files
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return text.split(separator: "\n").map { $0 == "ok" }
    }

    @Test func chunksAreJudgedAsPillowJudgesThem() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let png = Array(try Data(contentsOf: URL(fileURLWithPath: try ImageFixtures.photos() + "/astronaut.png")))
        let original = chunks(png)
        let firstData = try #require(original.firstIndex { $0.type == Array("IDAT".utf8) })
        let signature = Array(png[0..<8])
        func file(_ name: String, _ list: [Chunk]) throws -> String {
            try Fixtures.write(Data(signature + list.flatMap(\.bytes)), as: name, in: folder)
        }
        func before(_ chunk: Chunk) -> [Chunk] {
            Array(original[..<firstData]) + [chunk] + Array(original[firstData...])
        }
        func afterData(_ chunk: Chunk) -> [Chunk] { Array(original.dropLast()) + [chunk, original.last!] }
        var lastDataCRC = original
        lastDataCRC[original.count - 2].crc = [0, 0, 0, 0]
        let word = Array("ab_1".utf8)
        let cases: [(String, [Chunk], Bool)] = [
            ("good.png", original, true),
            (
                "text-bad-crc.png",
                before(Chunk(type: Array("tEXt".utf8), body: Array("a\0b".utf8), crc: [0, 0, 0, 0])), false
            ),
            ("type-not-a-word.png", before(Chunk(type: Array("ab1!".utf8), body: [1, 2, 3])), false),
            ("type-with-underscore.png", before(Chunk(type: word, body: [1, 2, 3])), true),
            ("unknown-critical.png", before(Chunk(type: Array("ABCD".utf8), body: [1, 2, 3])), true),
            (
                "iccp-method-1.png", before(Chunk(type: Array("iCCP".utf8), body: Array("name\0".utf8) + [1, 0x78])),
                false
            ),
            ("idat-bad-crc.png", lastDataCRC, true),
            ("after-data-bad-type.png", afterData(Chunk(type: Array("a!!!".utf8), body: [])), true),
            (
                "after-data-bad-crc.png", afterData(Chunk(type: Array("tEXt".utf8), body: [0x61], crc: [9, 9, 9, 9])),
                true
            ),
            ("no-iend.png", Array(original.dropLast()), true),
        ]
        let files = try cases.map { try file($0.0, $0.1) }
        let pillow = try pillowDecodes(files)
        #expect(pillow == cases.map(\.2), "Pillow's verdicts: \(pillow)")
        // A chunk Pillow skips changes no pixel: every variant it decodes gives the original's values
        // (which ImageCLITests compares with torchvision's).
        let out = folder.appendingPathComponent("out.npy").path
        #expect(try densekit(["preprocess", files[0], "-o", out, "--preset", "torchvision"]).status == 0)
        let originalValues = try NPY.read(path: out).values
        for (file, expected) in zip(files, pillow) {
            let outcome = try densekit(["preprocess", file, "-o", out, "--preset", "torchvision"])
            if expected {
                #expect(outcome.status == 0, "\(file): \(outcome.stderr)")
                #expect(try NPY.read(path: out).values == originalValues, "\(file)")
            } else {
                #expect(
                    outcome.status == 2 && outcome.stderr.hasPrefix("error: \(file): broken PNG"),
                    "\(file): \(outcome.stderr)")
            }
        }
    }
}
