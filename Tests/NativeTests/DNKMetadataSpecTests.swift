import DenseKit
import Foundation
import TestSupport
import Testing

/// The metadata a `.dnk` holds has exactly the keys that schemas/dnk-format.md shows: the spec's
/// JSON example is parsed and its key paths compared with those of files DenseKit writes.
@Suite struct DNKMetadataSpecTests {
    /// Key paths of a JSON value ("structure.stem.pool.kind"); the entries of the name-keyed maps
    /// (`convs`, `epsilons`) count once, as `<name>`, and arrays by their first element.
    func paths(_ value: Any, _ prefix: String = "") -> Set<String> {
        var out: Set<String> = []
        if let object = value as? [String: Any] {
            let named = prefix.hasSuffix("convs") || prefix.hasSuffix("epsilons")
            for (key, child) in object {
                let path = prefix.isEmpty ? key : "\(prefix).\(named ? "<name>" : key)"
                out.insert(path)
                out.formUnion(paths(child, path))
            }
        } else if let array = value as? [Any], let first = array.first {
            out.formUnion(paths(first, prefix + "[]"))
        }
        return out
    }

    func specExample() throws -> [String: Any] {
        let spec = try String(
            contentsOf: Fixtures.root.appendingPathComponent("schemas/dnk-format.md"), encoding: .utf8)
        let start = try #require(spec.range(of: "```json\n"))
        let end = try #require(spec.range(of: "\n```", range: start.upperBound..<spec.endIndex))
        return try #require(
            JSONSerialization.jsonObject(with: Data(spec[start.upperBound..<end.lowerBound].utf8)) as? [String: Any])
    }

    /// The metadata JSON of a `.dnk` file (header: offset at byte 16, length at byte 24).
    func metadata(_ path: String) throws -> [String: Any] {
        let fileData = try Data(contentsOf: URL(fileURLWithPath: path))
        func u64(_ at: Int) -> Int {
            fileData.withUnsafeBytes {
                Int(UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self)))
            }
        }
        return try #require(
            JSONSerialization.jsonObject(with: fileData.subdata(in: u64(16)..<(u64(16) + u64(24)))) as? [String: Any])
    }

    @Test(arguments: ["tv-tiny-legacy-opset17.onnx", "keras3-tiny.keras", "cifar-plain-tiny-legacy-opset17.onnx"])
    func writtenKeysAreTheSpecsKeys(_ fixture: String) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("m.dnk").path
        var converter = Converter()
        converter.acceptDeviations = true
        _ = try converter.convert(source: Fixtures.path(fixture), to: out)
        let written = paths(try metadata(out))
        let spec = paths(try specExample())
        #expect(written.subtracting(spec).isEmpty, "written but not in the spec: \(written.subtracting(spec).sorted())")
        // Only the input sizes a source leaves open, and the pool of a stem without one (CIFAR), may be absent.
        let optional = Set(["structure.input.height", "structure.input.width", "structure.input.batch"])
            .union(spec.filter { $0.hasPrefix("structure.stem.pool") })
        #expect(
            spec.subtracting(written).isSubset(of: optional),
            "in the spec but not written: \(spec.subtracting(written).sorted())")
        #expect(spec.count > 40)
    }
}
