import DenseKit
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// ONNX files broken on purpose: a valid fixture is unpacked with protobuf-c, one thing is changed in
/// the message (a dimension, a name, an input), and it is packed again, so only that one thing is wrong.
@Suite struct ONNXCorruptionTests {
    private typealias E = ONNXEditing

    /// Loads `bytes` as an .onnx file and returns the error it raises (nil if it loads).
    func loadError(_ bytes: Data, extra: [String: Data] = [:]) throws -> ImportError? {
        do {
            _ = try Fixtures.loadWritten(bytes, as: "m.onnx", extra: extra)
            return nil
        } catch let error as ImportError {
            return error
        }
    }

    /// Expects a structure error at an ONNX node (whose label the exporter chose) with `problem`.
    func expectNodeError(_ bytes: Data, _ problem: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let error = try loadError(bytes)
        guard case .structure(.node, problem)? = error else {
            Issue.record(
                "expected a node's '\(problem)', found \(String(describing: error))", sourceLocation: sourceLocation)
            return
        }
    }

    @Test func unchangedRepackLoads() throws {
        #expect(try loadError(try E.mutated("tv-tiny-legacy-opset17.onnx") { _ in }) == nil)
    }

    @Test func aTensorClaimingTwoToTheFortyElementsIsRefusedWithoutAllocating() throws {
        // 2^20 x 2^20 float32 is 4 TiB: allocating it would trap, so an error proves nothing was allocated.
        var tensor = ""
        func huge(_ fixture: String) throws -> Data {
            try E.mutated(fixture) { m in
                let initializer = E.initializer(m, try E.firstWeight(m))
                tensor = E.name(initializer.pointee.name)
                E.setDims(initializer, [1 << 20, 1 << 20])
            }
        }
        func tooMany() -> ImportError {
            .malformed(.tensor(tensor), problem: "shape [1048576, 1048576] has more than 2^31 elements")
        }
        let inline = try huge("tv-tiny-legacy-opset17.onnx")
        #expect(try loadError(inline) == tooMany())
        let dataName = "tv-tiny-dynamo-opset18.onnx.data"
        let external = try huge("tv-tiny-dynamo-opset18.onnx")
        #expect(try loadError(external, extra: [dataName: try Fixtures.data(dataName)]) == tooMany())
    }

    @Test func wrongOrNegativeDimsAreRefused() throws {
        var tensor = ""
        var dims: [Int] = []
        let grown = try E.mutated("tv-tiny-legacy-opset17.onnx") { m in
            let initializer = E.initializer(m, try E.firstWeight(m))
            tensor = E.name(initializer.pointee.name)
            dims = UnsafeBufferPointer(start: initializer.pointee.dims, count: initializer.pointee.n_dims).map(Int.init)
            E.setDims(initializer, [Int64(dims[0] + 1)] + dims.dropFirst().map(Int64.init))
        }
        let stored = dims.reduce(1, *)
        let claimed = stored / dims[0] * (dims[0] + 1)
        #expect(
            try loadError(grown)
                == .mismatch(
                    .tensor(tensor), expected: "\(claimed * 4) bytes for \(claimed) values", found: "\(stored * 4)"))
        let negative = try E.mutated("tv-tiny-legacy-opset17.onnx") { m in
            let initializer = E.initializer(m, try E.firstWeight(m))
            tensor = E.name(initializer.pointee.name)
            E.setDims(initializer, [-3, 4])
        }
        #expect(try loadError(negative) == .malformed(.tensor(tensor), problem: "dimension -3 out of range"))
    }

    @Test func duplicateAndMissingInitializersAreNamed() throws {
        var first = ""
        let duplicate = try E.mutated("tv-tiny-legacy-opset17.onnx") { m in
            first = E.name(E.initializer(m, 0).pointee.name)
            E.setString(&E.initializer(m, 1).pointee.name, first)
        }
        #expect(try loadError(duplicate) == .malformed(.tensor(first), problem: "duplicate initializer"))

        var removed = ""
        let missing = try E.mutated("tv-tiny-legacy-opset17.onnx") { m in
            let index = try E.firstWeight(m, rank: 4)
            removed = E.name(E.initializer(m, index).pointee.name)
            E.removeInitializer(m, index)
        }
        try expectNodeError(missing, "input W '\(removed)' is not a stored float initializer")
    }

    @Test func danglingAndCyclicNodeInputsAreRefused() throws {
        let dangling = try E.mutated("tv-tiny-legacy-opset17.onnx") { m in
            E.setString(&E.node(m, 3).pointee.input[0], "nowhere")
        }
        try expectNodeError(dangling, "reads 'nowhere', which nothing produces")

        // The second node reads what a later node produces: a cycle once the edges are followed.
        var later = ""
        let cyclic = try E.mutated("tv-tiny-legacy-opset17.onnx") { m in
            later = E.name(E.node(m, 5).pointee.output[0])
            E.setString(&E.node(m, 1).pointee.input[0], later)
        }
        try expectNodeError(cyclic, "reads '\(later)' before it is produced (cycle or unsorted graph)")

        // Two nodes writing the same value.
        let twice = try E.mutated("tv-tiny-legacy-opset17.onnx") { m in
            E.setString(&E.node(m, 2).pointee.output[0], E.name(E.node(m, 1).pointee.output[0]))
        }
        #expect(try loadError(twice) != nil)
    }

    @Test func everySingleByteFlipIsRefusedOrHarmless() throws {
        // Flipping a byte must never crash: it either breaks the file (an ImportError) or changes a
        // value the model can still be read with.
        let data = try Fixtures.data("tv-tiny-legacy-opset17.onnx")
        var refused = 0
        var loaded = 0
        for at in stride(from: 0, to: data.count, by: max(1, data.count / 400)) {
            var copy = data
            copy[at] ^= 0xA5
            if try loadError(copy) == nil { loaded += 1 } else { refused += 1 }
        }
        #expect(refused > 0 && loaded > 0, "refused \(refused), loaded \(loaded)")
    }

    @Test func badMagicIsNotAModel() throws {
        var data = try Fixtures.data("tv-tiny-legacy-opset17.onnx")
        data.replaceSubrange(0..<4, with: [0x89, 0x48, 0x44, 0x46])
        #expect(
            try loadError(data)
                == .malformed(.file, problem: "not an ONNX model (protobuf parse failed: truncated or corrupt)"))
    }

    /// A graph attribute nesting subgraphs thousands deep (a 5000-deep one overflowed the stack inside
    /// libprotobuf-c): refused by name before protobuf-c reads it, by the loader and the command line.
    @Test func deeplyNestedSubgraphsAreRefused() throws {
        func field(_ number: UInt8, _ bytes: [UInt8]) -> [UInt8] {
            var length: [UInt8] = []
            var remaining = bytes.count
            repeat {
                length.append(UInt8(remaining & 0x7F) | (remaining > 0x7F ? 0x80 : 0))
                remaining >>= 7
            } while remaining > 0
            return [number << 3 | 2] + length + bytes
        }
        func model(depth: Int) -> Data {
            var graph: [UInt8] = []
            for _ in 0..<depth {
                let attribute = field(1, Array("body".utf8)) + field(6, graph)
                let node = field(3, Array("loop".utf8)) + field(4, Array("Loop".utf8)) + field(5, attribute)
                graph = field(1, node)
            }
            return Data(field(7, graph))
        }
        for depth in [40, 5000] {
            #expect(
                throws: ImportError.unsupported(
                    .node("node 'loop'"), problem: "subgraphs nested deeper than 32 (a DenseNet has none)")
            ) { _ = try Fixtures.loadWritten(model(depth: depth), as: "nested.onnx") }
        }
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = try Fixtures.write(model(depth: 5000), as: "nested.onnx", in: folder)
        let outcome = try densekit(["inspect", path])
        #expect(
            outcome.status == 2
                && outcome.stderr
                    == "error: \(path): node 'loop': subgraphs nested deeper than 32 (a DenseNet has none)\n"
        )
        // A shallow nesting passes the scan and is refused for what it is (not a DenseNet).
        let shallow = try Fixtures.write(model(depth: 3), as: "shallow.onnx", in: folder)
        let shallowRun = try densekit(["inspect", shallow])
        #expect(shallowRun.status == 2 && !shallowRun.stderr.contains("nested deeper"), "\(shallowRun.stderr)")
    }
}
