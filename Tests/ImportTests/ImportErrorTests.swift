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

    /// The error `body` throws, recorded as an issue when it throws none or another type.
    func refusal(
        _ body: () throws -> DenseNet, sourceLocation: SourceLocation = #_sourceLocation
    ) -> ImportError? {
        #expect(throws: ImportError.self, sourceLocation: sourceLocation) { _ = try body() }
    }

    @Test func garbageIsNotAModel() {
        var rng = SeededRandom(5)
        let bytes = Data((0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) })
        #expect(
            refusal { try Fixtures.loadWritten(bytes, as: "x.onnx") }
                == .malformed(.file, problem: "not an ONNX model (protobuf parse failed: truncated or corrupt)"))
        #expect(
            refusal { try Fixtures.loadWritten(Data(), as: "empty.onnx") } == .unrecognized(looksLike: "an empty file"))
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
        let error = refusal { try Fixtures.loadWritten(data, as: "op.onnx") }
        guard case .mismatch(.node(let label), _, let found)? = error else {
            Issue.record("expected a mismatch at a node, found \(String(describing: error))")
            return
        }
        #expect(label.hasPrefix("Relx node") && found == "Relx (opset 17)", "\(label), \(found)")
    }

    @Test func missingInitializerIsNamed() throws {
        let name = "features.denseblock1.denselayer1.norm1.weight"
        let data = try patch(
            try Fixtures.data("tv-tiny-legacy-opset11-unfolded.onnx"), name,
            "features.denseblock1.denselayer1.norm1.wxight")
        let error = refusal { try Fixtures.loadWritten(data, as: "missing.onnx") }
        guard case .structure(.node(let label), let problem)? = error else {
            Issue.record("expected a structure error at a node, found \(String(describing: error))")
            return
        }
        #expect(label.hasPrefix("BatchNormalization node"), "\(label)")
        #expect(
            problem == "input scale 'features.denseblock1.denselayer1.norm1.wxight' is not a stored float initializer")
    }

    @Test func externalDataMustStayInTheModelsFolder() throws {
        let model = try Fixtures.data("tv-tiny-dynamo-opset18.onnx")
        let weights = try Fixtures.data("tv-tiny-dynamo-opset18.onnx.data")
        let location = "tv-tiny-dynamo-opset18.onnx.data"
        // The first initializer stored in the external file (the stem conv's weight, in the export's name).
        let firstExternalTensor = "features.conv0.weight"
        let escaping = try patch(model, location, "../../../../../../../../etc/host")
        let escaped = refusal { try Fixtures.loadWritten(escaping, as: "m.onnx", extra: [location: weights]) }
        #expect(escaped?.subject == .tensor(firstExternalTensor))
        #expect(
            escaped?.message == "external data location '../../../../../../../../etc/host' escapes the model's folder")
        let absolutePath = "/" + String(repeating: "x", count: location.count - 1)
        let absolute = try patch(model, location, absolutePath)
        #expect(
            refusal { try Fixtures.loadWritten(absolute, as: "m.onnx") }
                == .malformed(
                    .tensor(firstExternalTensor),
                    problem: "external data location '\(absolutePath)' escapes the model's folder"))
        #expect(
            refusal { try Fixtures.loadWritten(model, as: "m.onnx") }
                == .unreadable(
                    .tensor(firstExternalTensor), problem: "cannot open external data file '\(location)': no such file")
        )
        let short = refusal {
            try Fixtures.loadWritten(model, as: "m.onnx", extra: [location: weights.prefix(weights.count / 2)])
        }
        guard case .mismatch(.tensor, _, let found)? = short else {
            Issue.record("expected a mismatch at a tensor, found \(String(describing: short))")
            return
        }
        #expect(found == "a file of \(weights.count / 2) bytes")
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
        let half = refusal { try Fixtures.loadWritten(data.prefix(data.count / 2), as: "half.h5") }
        guard case .malformed(.file, let problem)? = half else {
            Issue.record("expected a malformed file, found \(String(describing: half))")
            return
        }
        #expect(problem.contains("HDF5"), "\(problem)")  // libhdf5's own words follow
        #expect(
            refusal { try Fixtures.loadWritten(Data("not an hdf5 file at all".utf8), as: "x.h5") }
                == .unrecognized(looksLike: "text"))
    }

    @Test func corruptKerasArchiveIsRefused() throws {
        let data = try Fixtures.data("keras3-tiny.keras")
        var flipped = data
        let at = data.count / 2
        flipped[at] ^= 0xFF
        let flip = refusal { try Fixtures.loadWritten(flipped, as: "flip.keras") }
        guard case .malformed(.entry(kind: "zip entry", _), "CRC mismatch (corrupt)")? = flip else {
            Issue.record("expected a CRC mismatch in a zip entry, found \(String(describing: flip))")
            return
        }
        #expect(
            refusal { try Fixtures.loadWritten(data.prefix(data.count - 30), as: "cut.keras") }
                == .malformed(.file, problem: "zip archive has no end-of-central-directory record (truncated?)"))
        let renamed = try patch(data, "model.weights.h5", "model.weights.hX", all: true)
        #expect(
            refusal { try Fixtures.loadWritten(renamed, as: "renamed.keras") }
                == .malformed(.file, problem: ".keras archive has no model.weights.h5"))
        let escaping = try patch(data, "config.json", "../fig.json", all: true)
        #expect(
            refusal { try Fixtures.loadWritten(escaping, as: "escaping.keras") }
                == .malformed(.entry(kind: "zip entry", name: "../fig.json"), problem: "escapes the archive"))
        #expect(
            refusal { try Fixtures.loadWritten(Data("not a zip archive".utf8), as: "garbage.keras") }
                == .unrecognized(looksLike: "text"))
    }
}
