import DenseKit
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// Broken files, generated here from valid fixtures: each is refused with an error naming the
/// problem, never a crash.
@Suite struct ImportErrorTests {

    /// Replaces the first (or every) occurrence of `old` with `new`; same length, so protobuf and zip
    /// lengths stay valid.
    func patch(_ data: Data, _ old: String, _ new: String, all: Bool = false) throws -> Data {
        precondition(old.utf8.count == new.utf8.count)
        var copy = data
        var range = try #require(copy.range(of: Data(old.utf8)), "'\(old)' not in fixture")
        repeat {
            copy.replaceSubrange(range, with: Data(new.utf8))
            guard all, let next = copy.range(of: Data(old.utf8), in: range.upperBound..<copy.endIndex) else { break }
            range = next
        } while true
        return copy
    }

    func expectError(
        _ contains: String, _ body: () throws -> DenseNet, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do {
            _ = try body()
            Issue.record("expected an error containing '\(contains)'", sourceLocation: sourceLocation)
        } catch {
            #expect("\(error)".contains(contains), "\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func garbageIsNotAModel() {
        var rng = SeededRandom(5)
        let bytes = Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) })
        expectError("not an ONNX model") { try Fixtures.loadWritten(bytes, as: "x.onnx") }
        expectError("empty file") { try Fixtures.loadWritten(Data(), as: "empty.onnx") }
    }

    @Test func truncatedONNXIsRefusedAtEveryCut() throws {
        let data = try Fixtures.data("tv-tiny-legacy-opset17.onnx")
        for cut in stride(from: 1, to: data.count, by: max(1, data.count / 97)) {
            #expect(throws: ImportError.self, "cut at \(cut)") {
                try Fixtures.loadWritten(data.prefix(cut), as: "cut.onnx")
            }
        }
    }

    @Test func unknownOperatorNamesItAndTheOpset() throws {
        // NodeProto.op_type is field 4: tag 0x22, then the length 4.
        let data = try patch(try Fixtures.data("tv-tiny-legacy-opset17.onnx"), "\u{22}\u{04}Relu", "\u{22}\u{04}Relx")
        expectError("found Relx (opset 17)") { try Fixtures.loadWritten(data, as: "op.onnx") }
    }

    @Test func missingInitializerIsNamed() throws {
        let name = "features.denseblock1.denselayer1.norm1.weight"
        let data = try patch(
            try Fixtures.data("tv-tiny-legacy-opset11-unfolded.onnx"), name,
            "features.denseblock1.denselayer1.norm1.wxight")
        expectError("'features.denseblock1.denselayer1.norm1.wxight' is not a stored float initializer") {
            try Fixtures.loadWritten(data, as: "missing.onnx")
        }
    }

    @Test func externalDataMustStayInTheModelsFolder() throws {
        let model = try Fixtures.data("tv-tiny-dynamo-opset18.onnx")
        let weights = try Fixtures.data("tv-tiny-dynamo-opset18.onnx.data")
        let location = "tv-tiny-dynamo-opset18.onnx.data"
        let escaping = try patch(model, location, "../../../../../../../../etc/host")
        expectError("escapes the model's folder") {
            try Fixtures.loadWritten(escaping, as: "m.onnx", extra: [location: weights])
        }
        let absolute = try patch(model, location, "/" + String(repeating: "x", count: location.count - 1))
        expectError("escapes the model's folder") { try Fixtures.loadWritten(absolute, as: "m.onnx") }
        expectError("cannot open external data file") { try Fixtures.loadWritten(model, as: "m.onnx") }
        expectError("found a file of \(weights.count / 2) bytes") {
            try Fixtures.loadWritten(model, as: "m.onnx", extra: [location: weights.prefix(weights.count / 2)])
        }
        // Intact, it loads.
        #expect(try Fixtures.loadWritten(model, as: "m.onnx", extra: [location: weights]).blocks.count == 3)
    }

    @Test func truncatedOrCorruptHDF5IsRefused() throws {
        let data = try Fixtures.data("keras3-tiny.h5")
        for cut in [8, 100, 2048, data.count / 2, data.count - 10] {
            #expect(throws: ImportError.self, "cut at \(cut)") {
                try Fixtures.loadWritten(data.prefix(cut), as: "cut.h5")
            }
        }
        expectError("HDF5") { try Fixtures.loadWritten(data.prefix(data.count / 2), as: "half.h5") }
        expectError("not a model file DenseKit reads (looks like text)") {
            try Fixtures.loadWritten(Data("not an hdf5 file at all".utf8), as: "x.h5")
        }
    }

    @Test func corruptKerasArchiveIsRefused() throws {
        let data = try Fixtures.data("keras3-tiny.keras")
        var flipped = data
        let at = data.count / 2
        flipped[at] ^= 0xFF
        expectError("CRC mismatch") { try Fixtures.loadWritten(flipped, as: "flip.keras") }
        expectError("end-of-central-directory") {
            try Fixtures.loadWritten(data.prefix(data.count - 30), as: "cut.keras")
        }
        let renamed = try patch(data, "model.weights.h5", "model.weights.hX", all: true)
        expectError("no model.weights.h5") { try Fixtures.loadWritten(renamed, as: "renamed.keras") }
        let escaping = try patch(data, "config.json", "../fig.json", all: true)
        expectError("zip entry '../fig.json' escapes the archive") {
            try Fixtures.loadWritten(escaping, as: "escaping.keras")
        }
        expectError("not a model file DenseKit reads (looks like text)") {
            try Fixtures.loadWritten(Data("not a zip archive".utf8), as: "garbage.keras")
        }
    }
}
