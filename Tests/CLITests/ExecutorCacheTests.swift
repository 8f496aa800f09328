import DenseKit
import Foundation
import Testing
import TestSupport

/// The executor cache of a `.dnk` (schemas/dnk-format.md, `executorCache`): what the executor runs
/// when the file has one, exactly what it would prepare itself; edits to it are seen, refused or
/// ignored as the spec says.
@Suite struct ExecutorCacheTests {
    static let fixtures = ["tv-tiny-legacy-opset17.onnx", "cifar-bc-tiny-legacy-opset17.onnx", "keras3-tiny.keras"]

    /// `fixture` converted to a `.dnk` (with its cache), in a new folder.
    func converted(_ fixture: String) throws -> (folder: URL, path: String) {
        let folder = try Fixtures.temporaryFolder()
        let out = folder.appendingPathComponent("m.dnk").path
        var converter = Converter()
        converter.acceptDeviations = true
        _ = try converter.convert(source: Fixtures.path(fixture), to: out)
        return (folder, out)
    }

    func input(for net: DenseNet, _ fixture: String) throws -> ModelInput {
        let file = fixture.hasPrefix("keras") ? "input-64-nhwc.npy" : fixture.hasPrefix("cifar") ? "input-32.npy" : "input-64.npy"
        return try ModelInput(try Fixtures.npy(Fixtures.path(file)), layout: nil, for: net)
    }

    func run(_ net: DenseNet, _ x: ModelInput, mode: ConvolutionMode = .default, cache: ExecutorCache? = nil) throws -> (y: [Float], cached: Int, buffers: Int) {
        let e = try Executor(net, threads: 2, mode: mode, cache: cache)
        return (try e.run(x.values, batch: x.batch, height: x.height, width: x.width), e.cacheUse.cached, e.cacheUse.buffers)
    }

    @Test(arguments: fixtures)
    func aCachedFileRunsBitForBitAsPreparedWeights(_ fixture: String) throws {
        let (folder, path) = try converted(fixture)
        defer { try? FileManager.default.removeItem(at: folder) }
        let (net, cache) = try DNKReader.loadWithCache(path: path)
        let c = try #require(cache)
        let x = try input(for: net, fixture)
        let fast = try run(net, x, cache: c), plain = try run(net, x)
        #expect(fast.cached == fast.buffers && fast.buffers == c.buffers && plain.cached == 0)
        #expect(fast.y.map(\.bitPattern) == plain.y.map(\.bitPattern))
        // --exact takes what the cache holds (1x1 packing, biases, BatchNorms) and packs the 3x3 convs itself.
        let exact = try run(net, x, mode: .exact, cache: c), exactPlain = try run(net, x, mode: .exact)
        #expect(exact.cached > 0 && exact.cached < exact.buffers)
        #expect(exact.y.map(\.bitPattern) == exactPlain.y.map(\.bitPattern))
        // The cache's floats are not the model's parameters.
        #expect(net.source.storedParameters == (try ModelLoader.load(path: Fixtures.path(fixture))).source.storedParameters)
    }

    // MARK: editing a .dnk and resealing its checksums

    func u64(_ d: Data, _ at: Int) -> Int { d.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self))) } }
    func put(_ d: inout Data, _ at: Int, _ v: UInt64) { d.replaceSubrange(at..<(at + 8), with: withUnsafeBytes(of: v.littleEndian, Array.init)) }

    /// Recomputes every checksum of a `.dnk` (tensors, metadata, table, header), as a forger would.
    func resealed(_ d: Data) -> Data {
        var d = d
        let (meta, table, count, data) = (u64(d, 16), u64(d, 32), Int(d.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 40, as: UInt32.self) }), u64(d, 48))
        for i in 0..<count {
            let at = table + i * 96, start = u64(d, at + 68)
            let end = i + 1 < count ? u64(d, at + 96 + 68) : d.count
            put(&d, at + 84, d.subdata(in: start..<end).withUnsafeBytes { LaneHash.hash($0) })
        }
        put(&d, 72, d.subdata(in: meta..<table).withUnsafeBytes { XXH64.hash($0) })
        put(&d, 80, d.subdata(in: table..<data).withUnsafeBytes { XXH64.hash($0) })
        put(&d, 120, d.prefix(120).withUnsafeBytes { XXH64.hash($0) })
        return d
    }

    /// The metadata JSON's text and where it starts.
    func metadata(_ d: Data) -> (text: String, start: Int) {
        (String(decoding: d.subdata(in: u64(d, 16)..<(u64(d, 16) + u64(d, 24))), as: UTF8.self), u64(d, 16))
    }

    /// Every tensor's name and the byte offset of its data, in table order.
    func tensorOffsets(_ d: Data) -> [(name: String, offset: Int)] {
        let (table, count) = (u64(d, 32), Int(d.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 40, as: UInt32.self) }))
        return (0..<count).map { i in
            (String(decoding: d.subdata(in: (table + i * 96)..<(table + i * 96 + 48)).prefix { $0 != 0 }, as: UTF8.self), u64(d, table + i * 96 + 68))
        }
    }

    func offset(of tensor: String, _ d: Data) throws -> Int {
        try #require(tensorOffsets(d).first { $0.name == tensor }).offset
    }

    /// The cache is what runs: adding 1 to the classifier's cached bias (checksums resealed) moves that
    /// class's logit by 1 and nothing else; `run --no-cache` still gives the weights' output.
    @Test func theCacheIsWhatRuns() throws {
        let (folder, path) = try converted("tv-tiny-legacy-opset17.onnx")
        defer { try? FileManager.default.removeItem(at: folder) }
        var d = try Data(contentsOf: URL(fileURLWithPath: path))
        let at = try offset(of: "cache:head.classifier.bias", d) + 3 * 4
        let old = d.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: at, as: Float.self) }
        d.replaceSubrange(at..<(at + 4), with: withUnsafeBytes(of: old + 1, Array.init))
        let edited = folder.appendingPathComponent("edited.dnk").path
        try resealed(d).write(to: URL(fileURLWithPath: edited))
        let input = Fixtures.path("input-64.npy")
        var outputs: [[Float]] = []
        for args in [[path], [edited], [edited, "--no-cache"]] {
            let out = folder.appendingPathComponent("y\(outputs.count).npy").path
            let r = try densekit(["run"] + args + ["--input", input, "-o", out, "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            let json = try r.json()
            #expect(json["cachedBuffers"] as? Int == (args.count == 1 ? json["buffers"] as? Int : 0))
            outputs.append(try NPY.read(path: out).values)
        }
        for (i, (a, b)) in zip(outputs[0], outputs[1]).enumerated() {
            if i % 10 == 3 { #expect(abs(b - a - 1) < 1e-5, "class \(i)") } else { #expect(a == b, "class \(i)") }
        }
        #expect(outputs[2] == outputs[0])
    }

    /// A cache of another format is ignored (the file runs from its weights); cache tensors that no
    /// description explains make a corrupt file, named; cache bytes changed without resealing fail the checksum.
    @Test func editsAreIgnoredOrRefusedAsTheSpecSays() throws {
        let (folder, path) = try converted("tv-tiny-legacy-opset17.onnx")
        defer { try? FileManager.default.removeItem(at: folder) }
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        let (text, start) = metadata(original)
        func edited(_ name: String, _ edit: (inout Data) -> Void) throws -> String {
            var d = original
            edit(&d)
            let p = folder.appendingPathComponent(name).path
            try d.write(to: URL(fileURLWithPath: p))
            return p
        }
        func replacing(_ old: String, _ new: String) -> (inout Data) -> Void {
            { d in
                let r = text.range(of: old)!
                let at = start + text.utf8.distance(from: text.startIndex, to: r.lowerBound)
                d.replaceSubrange(at..<(at + old.utf8.count), with: Array(new.utf8))
                d = self.resealed(d)
            }
        }
        let other = try edited("other.dnk", replacing("densekit-plan-3", "densekit-plan-9"))
        let (net, cache) = try DNKReader.loadWithCache(path: other)
        #expect(cache == nil)
        let x = try input(for: net, "tv-tiny")
        #expect(try run(net, x).y == (try run(try ModelLoader.load(path: path), x)).y)

        // The description blanked out (the same number of spaces: the JSON stays valid).
        let description = "\"executorCache\":{\"format\":\"densekit-plan-3\",\"mode\":\"fast\"},"
        #expect(text.contains(description))
        let bad = try edited("bad.dnk", replacing(description, String(repeating: " ", count: description.utf8.count)))
        let firstBuffer = try #require(tensorOffsets(original).first { $0.name.hasPrefix("cache:") }).name
        for command in ["inspect", "run"] {
            let r = try densekit(command == "run" ? ["run", bad, "--input", Fixtures.path("input-64.npy"), "-o", folder.appendingPathComponent("n.npy").path] : [command, bad])
            #expect(r.status == 2 && r.stderr == "error: \(bad): tensor '\(firstBuffer)': no executorCache in the metadata describes it\n", "\(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("n.npy").path))

        let flipped = try edited("flipped.dnk") { d in
            let at = try! self.offset(of: firstBuffer, d) + 4
            d[at] ^= 0x40
        }
        for command in ["inspect", "run"] {
            let r = try densekit(command == "run" ? ["run", flipped, "--input", Fixtures.path("input-64.npy"), "-o", folder.appendingPathComponent("f.npy").path] : [command, flipped])
            #expect(r.status == 2 && r.stderr == "error: \(flipped): tensor '\(firstBuffer)': checksum mismatch (corrupt data or padding)\n", "\(r.stderr)")
        }
    }

    /// A reader deferring the cached weights returns with the cache's own checks still running, and
    /// the executor made with that cache finishes them before it is ready: a flipped byte in a cache
    /// buffer is the reader's error without the flag, the executor's with it (never a result). An
    /// intact file gives the same output both ways.
    @Test func theExecutorFinishesTheChecksTheReaderLeftRunning() throws {
        let (folder, path) = try converted("tv-tiny-legacy-opset17.onnx")
        defer { try? FileManager.default.removeItem(at: folder) }
        var d = try Data(contentsOf: URL(fileURLWithPath: path))
        // A byte in the middle of the largest buffer (the one a helper thread starts with).
        let tensors = tensorOffsets(d)
        let regions = zip(tensors, tensors.dropFirst().map(\.offset) + [d.count]).filter { $0.0.name.hasPrefix("cache:") }
        let (largest, end) = try #require(regions.max { $0.1 - $0.0.offset < $1.1 - $1.0.offset })
        d[(largest.offset + end) / 2] ^= 0x01
        let flipped = folder.appendingPathComponent("flipped.dnk").path
        try d.write(to: URL(fileURLWithPath: flipped))
        let message = "tensor '\(largest.name)': checksum mismatch (corrupt data or padding)"
        #expect(throws: ImportError.self) { _ = try DNKReader.loadWithCache(path: flipped) }
        do { _ = try DNKReader.loadWithCache(path: flipped) } catch { #expect("\(error)" == message) }
        let (net, cache) = try DNKReader.loadWithCache(path: flipped, deferringCachedWeights: true)
        let pending = try #require(cache)
        for _ in 0..<2 {  // every try gives the same answer
            do {
                _ = try Executor(net, threads: 2, cache: pending)
                Issue.record("an executor was made from a corrupt cache")
            } catch { #expect("\(error)" == message) }
        }
        let x = try input(for: net, "tv-tiny")
        let (intact, intactCache) = try DNKReader.loadWithCache(path: path, deferringCachedWeights: true)
        let (plainNet, plainCache) = try DNKReader.loadWithCache(path: path)
        #expect(intactCache != nil && plainCache != nil)
        let deferred = try run(intact, x, cache: intactCache), checked = try run(plainNet, x, cache: plainCache)
        #expect(deferred.cached == deferred.buffers && deferred.y.map(\.bitPattern) == checked.y.map(\.bitPattern))
    }

    /// `run` from the cache checks the cache on opening and the file's weights only when it reads
    /// them: a flipped byte in a weight the cache stands in for leaves its output bit for bit the
    /// intact file's, while `--no-cache`, `--exact` (which packs the 3x3 convs from the weights) and
    /// `inspect` refuse the file, naming the tensor; no output file is left behind.
    @Test(arguments: ["block1.layer1.conv.weight", "block2.layer1.norm.gamma"])
    func runChecksTheWeightsItReads(_ tensor: String) throws {
        let (folder, path) = try converted("tv-tiny-legacy-opset17.onnx")
        defer { try? FileManager.default.removeItem(at: folder) }
        var d = try Data(contentsOf: URL(fileURLWithPath: path))
        d[try offset(of: tensor, d) + 4] ^= 0x40
        let corrupt = folder.appendingPathComponent("corrupt.dnk").path
        try d.write(to: URL(fileURLWithPath: corrupt))
        let input = Fixtures.path("input-64.npy")
        func run(_ model: String, _ extra: [String] = []) throws -> (status: Int32, stderr: String, y: [Float]?) {
            let out = folder.appendingPathComponent("y.npy").path
            try? FileManager.default.removeItem(atPath: out)
            let r = try densekit(["run", model, "--input", input, "-o", out] + extra)
            return (r.status, r.stderr, FileManager.default.fileExists(atPath: out) ? try NPY.read(path: out).values : nil)
        }
        let intact = try run(path), fromCache = try run(corrupt)
        #expect(intact.status == 0 && fromCache.status == 0, "\(fromCache.stderr)")
        #expect(try #require(fromCache.y).map(\.bitPattern) == (try #require(intact.y)).map(\.bitPattern))
        let message = "error: \(corrupt): tensor '\(tensor)': checksum mismatch (corrupt data or padding)\n"
        for extra in [["--no-cache"], ["--exact"]] {
            let r = try run(corrupt, extra)
            #expect(r.status == 2 && r.stderr == message && r.y == nil, "\(extra): \(r.stderr)")
        }
        let inspect = try densekit(["inspect", corrupt])
        #expect(inspect.status == 2 && inspect.stderr == message, "\(inspect.stderr)")
    }

    /// `inspect` names the cache; f16 files and `--no-executor-cache` have none.
    @Test func inspectNamesTheCacheAndOnlyFloat32FilesHaveOne() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = Fixtures.path("tv-tiny-legacy-opset17.onnx")
        let flags: [String: [String]] = ["c.dnk": [], "h.dnk": ["--dtype", "f16"], "n.dnk": ["--no-executor-cache"]]
        var paths: [String: String] = [:]
        for (name, extra) in flags {
            paths[name] = folder.appendingPathComponent(name).path
            let r = try densekit(["convert", model, "-o", paths[name]!, "--accept-deviations"] + extra)
            #expect(r.status == 0, "\(r.stderr)")
        }
        #expect(try densekit(["inspect", paths["c.dnk"]!]).stdout.contains("executor cache: "))
        #expect(try DNKReader.loadWithCache(path: paths["c.dnk"]!).cache != nil)
        #expect(try DNKReader.loadWithCache(path: paths["h.dnk"]!).cache == nil)
        #expect(try DNKReader.loadWithCache(path: paths["n.dnk"]!).cache == nil)
        try expectUsageErrorNoFile(["convert", model, "-o", folder.appendingPathComponent("x.onnx").path, "--no-executor-cache", "--accept-deviations"])
    }

    func expectUsageErrorNoFile(_ args: [String]) throws {
        let r = try densekit(args)
        #expect(r.status == 2 && r.stderr.contains("--no-executor-cache is for .dnk output") && r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }
}
