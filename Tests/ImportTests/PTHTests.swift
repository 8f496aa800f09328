import DenseKit
import DenseKitExecute
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// `.pth` files made by torch.save (both formats, a bare state_dict and a DataParallel training
/// checkpoint with optimizer state around a CheXNet-style head) run to torch's output; hostile
/// pickles, made here, are refused naming their global, and nothing they ask for ever happens.
@Suite(.serialized) struct PTHTests {
    @Test(arguments: [
        ("tv-tiny.pth", "tv-tiny.out.npy", "global avg pool, linear 16 -> 10, logits"),
        ("tv-tiny-legacy.pth", "tv-tiny.out.npy", "global avg pool, linear 16 -> 10, logits"),
        // module.densenet121.* keys, classifier.0 inside a Sequential with a Sigmoid; the reference is
        // torch's output before the sigmoid.
        (
            "tv-tiny-chexnet-checkpoint.pth.tar", "tv-tiny-chexnet-checkpoint.logits.npy",
            "global avg pool, linear 16 -> 14, activation unknown (the file stores none)"
        ),
    ])
    func runsToTorchsOutput(_ fixturePaths: (String, String, String)) throws {
        let net = try ModelLoader.load(path: Fixtures.path(fixturePaths.0))
        #expect(net.source.format == .pth && net.head.summary == fixturePaths.2)
        let modelInput = try ModelInput(try Fixtures.npy(Fixtures.path("input-64.npy")), layout: nil, for: net)
        let outputs = try Executor(net, threads: 2).run(
            modelInput.values, batch: modelInput.batch, height: modelInput.height, width: modelInput.width)
        #expect(relativeError(outputs, try Fixtures.npy(Fixtures.path(fixturePaths.1)).values) <= 1e-4)
        let backbone = try Verifier().verify(ModelLoader.load(path: Fixtures.path("tv-tiny-legacy-opset17.onnx")))
        let report = try Verifier().verify(net)
        #expect(report.deviations == backbone.deviations)
    }

    @Test func theWrapperAndWhatItSkipsAreNamed() throws {
        let net = try ModelLoader.load(path: Fixtures.path("tv-tiny-chexnet-checkpoint.pth.tar"))
        #expect(
            net.source.notes.contains(
                "a training checkpoint: the weights are its 'state_dict' entry; its other entries are skipped"))
        #expect(net.source.producer == "torch.save (zip format)")
        #expect(
            try ModelLoader.load(path: Fixtures.path("tv-tiny-legacy.pth")).source.producer
                == "torch.save (legacy format)")
    }

    // MARK: hostile pickles

    static let marker = FileManager.default.temporaryDirectory.appendingPathComponent("densekit-pickle-ran-\(getpid())")
        .path

    /// `\x80\x02` GLOBAL module.name, a string argument, TUPLE1, REDUCE: what a `__reduce__` returning
    /// (module.name, (argument,)) pickles to; `wrap` nests it inside a dict under `key`.
    static func call(_ module: String, _ name: String, _ argument: String, under key: String? = nil) -> Data {
        var pickleBytes: [UInt8] = [0x80, 0x02]
        func string(_ text: String) {
            pickleBytes +=
                [UInt8(ascii: "X")] + withUnsafeBytes(of: UInt32(text.utf8.count).littleEndian, Array.init)
                + Array(text.utf8)
        }
        if let key {
            pickleBytes += [UInt8(ascii: "}"), UInt8(ascii: "(")]
            string(key)
        }
        pickleBytes += [UInt8(ascii: "c")] + Array("\(module)\n\(name)\n".utf8)
        string(argument)
        pickleBytes += [0x85, UInt8(ascii: "R")]
        if key != nil { pickleBytes += [UInt8(ascii: "u")] }
        pickleBytes += [UInt8(ascii: ".")]
        return Data(pickleBytes)
    }

    /// The legacy format's first three pickles (magic number, protocol 1001, empty system info), then `object`.
    static func legacy(_ object: Data) -> Data {
        Data([0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E])
            + Data([0x80, 0x02, 0x4D, 0xE9, 0x03, 0x2E]) + Data([0x80, 0x02, 0x7D, 0x2E]) + object
    }

    static func zip(_ pickle: Data) -> Data {
        ZipWriting.stored([
            ("archive/data.pkl", pickle), ("archive/byteorder", Data("little".utf8)),
            ("archive/version", Data("3\n".utf8)),
        ])
    }

    func refusal(_ data: Data, as name: String) -> ImportError? {
        do {
            _ = try Fixtures.loadWritten(data, as: name)
            return nil
        } catch let error as ImportError {
            return error
        } catch {
            Issue.record("\(name): not an ImportError: \(error)")
            return nil
        }
    }

    /// A malformed pickle's problem (its byte offset aside), or nil for any other outcome.
    func pickleProblem(_ data: Data, as name: String) -> String? {
        guard case .malformed(.pickle, let problem)? = refusal(data, as: name) else { return nil }
        return problem
    }

    /// The refusal of a pickle global outside the allow-list.
    static func refusedGlobal(_ name: String) -> ImportError {
        .mismatch(
            .entry(kind: "pickle global", name: name),
            expected:
                """
                only the calls a checkpoint or a module tree uses (__builtin__.set, builtins.set, \
                collections.OrderedDict, ...), and classes as names
                """,
            found: "another (nothing was executed: DenseKit never runs a pickle's code)")
    }

    @Test func hostilePicklesAreRefusedAndNeverRun() throws {
        try? FileManager.default.removeItem(atPath: Self.marker)
        let touch = "touch \(Self.marker)"
        let payloads: [(Data, String)] = [
            (Self.call("posix", "system", touch), "posix.system"),
            (Self.call("os", "system", touch), "os.system"),
            (Self.call("builtins", "eval", "__import__('os').system('\(touch)')"), "builtins.eval"),
            (Self.call("subprocess", "check_call", touch, under: "state_dict"), "subprocess.check_call"),
            (Self.call("builtins", "exec", "open('\(Self.marker)', 'w')", under: "model"), "builtins.exec"),
        ]
        for (pickle, global) in payloads {
            for (file, name) in [(Self.zip(pickle), "evil.pth"), (Self.legacy(pickle), "evil-legacy.pth")] {
                #expect(refusal(file, as: name) == Self.refusedGlobal(global), "\(name)")
            }
        }
        // Through the command line too: exit 2, one line.
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let evil = try Fixtures.write(Self.zip(payloads[0].0), as: "evil.pth", in: folder)
        let report = try densekit(["inspect", evil])
        #expect(
            report.status == 2 && report.stderr.hasPrefix("error: \(evil): pickle global 'posix.system': ")
                && report.stderr.split(separator: "\n").count == 1)
        #expect(!FileManager.default.fileExists(atPath: Self.marker), "a payload ran")
    }

    @Test func picklesPastTheCapsAreRefused() throws {
        let deep = Data([0x80, 0x02] + [UInt8](repeating: UInt8(ascii: "("), count: 5000) + [UInt8(ascii: ".")])
        #expect(pickleProblem(Self.zip(deep), as: "deep.pth") == "MARKs nested deeper than 4096")
        let wide = Data(
            [0x80, 0x02] + [UInt8](repeating: UInt8(ascii: "N"), count: (1 << 20) + 1) + [UInt8(ascii: ".")])
        #expect(pickleProblem(Self.zip(wide), as: "wide.pth") == "more than 1048576 values on the stack")
        let unknown = Data([0x80, 0x02, 0x63] + Array("torch.nn.modules.linear\nLinear\n".utf8) + [0x2E])
        #expect(refusal(Self.zip(unknown), as: "module.pth") == Self.refusedGlobal("torch.nn.modules.linear.Linear"))
        // Containers nested 50,000 deep without a MARK (TUPLE1 after TUPLE1), in both torch.save
        // formats and as an APPEND chain: refused at the nesting cap (releasing them recursed past the
        // stack before), and through the command line exit 2 with one line.
        let tuples = Data([0x80, 0x02, UInt8(ascii: "N")] + [UInt8](repeating: 0x85, count: 50_000) + [0x2E])
        var appends: [UInt8] = [0x80, 0x02, UInt8(ascii: "]")]
        for _ in 0..<50_000 { appends += [UInt8(ascii: "]"), 0x94, UInt8(ascii: "a")] }
        let cap = "containers nested deeper than \(Unpickler.maximumDepth)"
        for (file, name) in [
            (Self.zip(tuples), "tuples.pth"), (Self.legacy(tuples), "tuples-legacy.pth"),
        ] {
            #expect(pickleProblem(file, as: name) == cap, "\(name)")
        }
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let nested = try Fixtures.write(Self.zip(tuples), as: "nested.pth", in: folder)
        let report = try densekit(["inspect", nested])
        #expect(
            report.status == 2 && report.stderr.hasPrefix("error: \(nested): pickle at byte ")
                && report.stderr.contains(cap))
        #expect(report.stderr.split(separator: "\n").count == 1, "\(report.stderr)")
        // A deep chain that is not nesting (each list appended to a list only once deep) is not refused
        // for depth: it is not a state_dict.
        #expect(pickleProblem(Self.zip(Data(appends + [0x2E])), as: "appends.pth") != cap)
        let opcode = Data([0x80, 0x02, UInt8(ascii: "i")] + Array("os\nsystem\n".utf8) + [0x2E])
        #expect(
            refusal(Self.zip(opcode), as: "inst.pth")
                == .mismatch(
                    .pickle(byte: 2), expected: "an opcode a state_dict uses",
                    found: "opcode 0x69 (nothing was executed)"))
    }

    /// The tests' own torch.save writer reproduces the real files' graph (so the lies below are
    /// the only thing wrong in them), and lying state_dicts are refused naming the tensor.
    @Test func liesInEitherFormatAreNamed() throws {
        let (entries, _) = try SafetensorsEditing.entries(try Fixtures.data("tv-tiny.safetensors"))
        let real = try ModelLoader.load(path: Fixtures.path("tv-tiny.pth"))
        for format in [TorchSaveWriting.Format.zip, .legacy] {
            let same = try Fixtures.loadWritten(TorchSaveWriting.file(entries, format: format), as: "same.pth")
            #expect(same.tensors.map(\.values) == real.tensors.map(\.values) && same.layerNames == real.layerNames)
            var lie = entries
            lie["features.norm5.running_var"]?.shape = [15]
            lie["features.norm5.running_var"]?.bytes.removeLast(4)
            #expect(
                refusal(TorchSaveWriting.file(lie, format: format), as: "lie.pth")
                    == .mismatch(
                        .weight(of: .layer(.head, part: "norm"), role: "variance", name: "features.norm5.running_var"),
                        expected: "16 values (one per channel)", found: "15"))
            lie = entries
            lie["features.denseblock2.denselayer1.conv2.weight"]?.shape = [4, 16, 3, 1]
            lie["features.denseblock2.denselayer1.conv2.weight"]?.bytes.removeLast(4 * 16 * 3 * 2)
            #expect(
                refusal(TorchSaveWriting.file(lie, format: format), as: "lie.pth")
                    == .mismatch(
                        .weight(
                            of: .layer(.denseLayer(block: 2, layer: 1), part: "conv"), role: "weight",
                            name: "features.denseblock2.denselayer1.conv2.weight"),
                        expected: "a square kernel of side 1 to 31", found: "3x1"))
        }
    }

    @Test func damagedCheckpointsAreRefused() throws {
        for fixture in ["tv-tiny.pth", "tv-tiny-legacy.pth"] {
            let good = try Fixtures.data(fixture)
            for cut in stride(from: 16, to: good.count, by: good.count / 30) {
                #expect(refusal(good.prefix(cut), as: "cut-" + fixture) != nil, "\(fixture) cut at \(cut)")
            }
            var flipped = 0
            for at in stride(from: 7, to: good.count, by: good.count / 60) {
                var copy = good
                copy[at] ^= 0xFF
                if refusal(copy, as: "flip-" + fixture) != nil { flipped += 1 }
            }
            #expect(flipped > 0)
        }
    }
}
