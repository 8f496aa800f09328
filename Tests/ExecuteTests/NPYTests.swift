import DenseKit
import DenseKitFormats
import Foundation
import TestSupport
import Testing

/// The .npy reader and writer: versions 1 to 3, dtypes, byte orders, Fortran order, every error.
@Suite struct NPYTests {
    func file(version: UInt8 = 1, descr: String = "<f4", fortran: Bool = false, shape: String, data: [UInt8]) -> Data {
        let header = "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [version, 0]
        let headerBytes = header.utf8.count
        bytes +=
            version == 1
            ? [UInt8(headerBytes & 0xFF), UInt8(headerBytes >> 8)]
            : [UInt8(headerBytes & 0xFF), UInt8(headerBytes >> 8), 0, 0]
        return Data(bytes + Array(header.utf8) + data)
    }

    func le32(_ values: [Float]) -> [UInt8] {
        values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
    }

    @Test func roundTrip() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("a.npy").path
        let array = NPY.Array(shape: [2, 3], values: [1, -2, 3.5, 0, .infinity, -0.25])
        try NPY.write(array, to: path)
        #expect(try NPY.read(path: path) == array)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        // The data (6 float32, 24 bytes) starts right after the header, at a multiple of 64 bytes, as numpy aligns it.
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        #expect(10 + headerLength == bytes.count - 24)
        #expect((10 + headerLength) % 64 == 0)
        #expect(bytes.prefix(8) == Data([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0]))
    }

    @Test func readsTheFixturesNumpyWrote() throws {
        let loaded = try NPY.read(path: Fixtures.path("input-64.npy"))
        #expect(loaded.shape == [2, 3, 64, 64])
        #expect(loaded.values.count == 2 * 3 * 64 * 64)
    }

    @Test(arguments: [1, 2, 3] as [UInt8])
    func versions(_ formatVersion: UInt8) throws {
        let array = try NPY.parse(file(version: formatVersion, shape: "(2,)", data: le32([1.5, -2])))
        #expect(array == NPY.Array(shape: [2], values: [1.5, -2]))
    }

    @Test func convertsOtherFloatTypes() throws {
        let f64 = [1.25, -3.0].flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) }
        #expect(try NPY.parse(file(descr: "<f8", shape: "(2,)", data: f64)).values == [1.25, -3])
        let f16: [UInt8] = [0x00, 0x3C, 0x00, 0xC0]  // 1.0, -2.0
        #expect(try NPY.parse(file(descr: "<f2", shape: "(2,)", data: f16)).values == [1, -2])
        let be: [UInt8] = [0x3F, 0x80, 0x00, 0x00]  // 1.0 big-endian
        #expect(try NPY.parse(file(descr: ">f4", shape: "(1,)", data: be)).values == [1])
    }

    /// numpy's other spellings of little-endian floats: '=' (native) and '|' (no byte order given).
    @Test(arguments: ["<f4", "=f4", "|f4"])
    func everySpellingOfFloat32(_ descr: String) throws {
        #expect(
            try NPY.parse(file(descr: descr, shape: "(3,)", data: le32([1.5, -2, 0.25]))).values == [1.5, -2, 0.25])
    }

    /// The header is a Python dict literal (numpy reads it with `ast.literal_eval`): a key given twice
    /// takes its last value, as in Python; a key numpy does not know, or a shape that is not a tuple, is
    /// refused, as numpy refuses them.
    @Test func theHeaderIsReadAsNumpyReadsIt() throws {
        func header(_ text: String, data: [UInt8]) -> Data {
            var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
            bytes += [UInt8(text.utf8.count & 0xFF), UInt8(text.utf8.count >> 8)]
            return Data(bytes + Array(text.utf8) + data)
        }
        let twice = header(
            "{'descr': '<f8', 'fortran_order': False, 'descr': '<f4', \"shape\": (2,), }\n", data: le32([1.5, -2]))
        #expect(try NPY.parse(twice) == NPY.Array(shape: [2], values: [1.5, -2]))
        let cases: [(String, String)] = [
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': True}", "header keys"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2)}", "is not a tuple"),
            ("{'descr': '<f4', 'fortran_order': False}", "header keys ['descr', 'fortran_order']"),
            ("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}", "unexpected value"),
            ("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", "after the dictionary"),
        ]
        for (text, message) in cases {
            #expect { try NPY.parse(header(text + "\n", data: le32([1, 2]))) } throws: { "\($0)".contains(message) }
        }
    }

    @Test func fortranOrderIsReordered() throws {
        // A 2x3 array [[1,2,3],[4,5,6]] stored column-major.
        let array = try NPY.parse(file(fortran: true, shape: "(2, 3)", data: le32([1, 4, 2, 5, 3, 6])))
        #expect(array == NPY.Array(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]))
    }

    @Test func errors() throws {
        let cases: [(Data, String)] = [
            (Data("not numpy".utf8), "bad magic"),
            (file(shape: "(3,)", data: le32([1, 2])), "needs 12 data bytes, found 8"),
            (file(descr: "<i4", shape: "(1,)", data: [0, 0, 0, 0]), "dtype '<i4'"),
            (file(version: 9, shape: "(1,)", data: le32([1])), "format version 9"),
            (file(shape: "(1, -2)", data: []), "bad dimension"),
            (file(shape: "(1,1,1,1,1,1,1,1,1)", data: le32([1])), "rank 9"),
            (file(shape: "(1099511627776,)", data: []), "too large"),
            (file(shape: "(1,)", data: le32([1])).prefix(20), "past the end"),
        ]
        for (data, message) in cases {
            #expect { try NPY.parse(data) } throws: { "\($0)".contains(message) }
        }
    }

    @Test func everyTruncationAndFlipIsRefusedOrHarmless() throws {
        let good = try Fixtures.data("input-64.npy")
        for cut in stride(from: 0, to: good.count, by: max(1, good.count / 200)) {
            #expect(throws: (any Error).self, "cut at \(cut)") { try NPY.parse(good.prefix(cut)) }
        }
        // A flipped header byte is refused or still describes the same amount of data; a flipped data
        // byte changes one value.
        var refused = 0
        for at in 0..<min(good.count, 200) {
            var copy = good
            copy[at] ^= 0x41
            do {
                let array = try NPY.parse(copy)
                #expect(array.values.count * 4 <= good.count, "flip at \(at)")
            } catch { refused += 1 }
        }
        #expect(refused > 0)
    }
}
