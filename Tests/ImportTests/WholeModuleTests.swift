import DenseKit
import DenseKitExecute
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// Whole pickled modules (`torch.save(model)`, both formats) and TorchScript archives (`torch.jit.save`):
/// read without running anything into the same graph as their state_dict, run to the framework's output;
/// hostile module trees refused by name, with nothing they ask for ever happening; lying trees named.
@Suite(.serialized) struct WholeModuleTests {
    struct Case: Sendable, CustomStringConvertible {
        var file: String, input: String, reference: String, producer: String, className: String
        var description: String { file }
    }

    static let cases = [
        Case(
            file: "tv-tiny-module.pth", input: "input-64.npy", reference: "tv-tiny.out.npy",
            producer: "torch.save (zip format)", className: "torchvision.models.densenet.DenseNet"),
        Case(
            file: "tv-tiny-module-legacy.pth", input: "input-64.npy", reference: "tv-tiny.out.npy",
            producer: "torch.save (legacy format)", className: "torchvision.models.densenet.DenseNet"),
        Case(
            file: "tv-tiny-module-checkpoint.pth", input: "input-64.npy", reference: "tv-tiny.out.npy",
            producer: "torch.save (zip format)", className: "torchvision.models.densenet.DenseNet"),
        Case(
            file: "tv-tiny-traced.pt", input: "input-64.npy", reference: "tv-tiny.out.npy",
            producer: "TorchScript (torch.jit.save)", className: "torchvision.models.densenet.DenseNet"),
        Case(
            file: "tv-tiny-scripted.pt", input: "input-64.npy", reference: "tv-tiny.out.npy",
            producer: "TorchScript (torch.jit.save)", className: "torchvision.models.densenet.DenseNet"),
        Case(
            file: "monai-tiny-module.pth", input: "input-64-gray.npy", reference: "monai-tiny.out.npy",
            producer: "torch.save (zip format)", className: "monai.networks.nets.densenet.DenseNet"),
        Case(
            file: "monai-tiny.ts", input: "input-64-gray.npy", reference: "monai-tiny.out.npy",
            producer: "TorchScript (torch.jit.save)", className: "monai.networks.nets.densenet.DenseNet"),
        Case(
            file: "xrv-tiny-module.pth", input: "input-64-gray.npy", reference: "xrv-tiny-module.logits.npy",
            producer: "torch.save (zip format)", className: "torchxrayvision.models.DenseNet"),
        Case(
            file: "xrv-tiny-module-legacy.pth", input: "input-64-gray.npy", reference: "xrv-tiny-module.logits.npy",
            producer: "torch.save (legacy format)", className: "torchxrayvision.models.DenseNet"),
    ]

    @Test(arguments: cases)
    func runsToTheFrameworksOutput(_ fixture: Case) throws {
        let net = try ModelLoader.load(path: Fixtures.path(fixture.file))
        #expect(net.source.format == .pth && net.source.producer == fixture.producer)
        #expect(
            net.source.notes.contains {
                $0.hasPrefix("a whole module of class '\(fixture.className)': its parameters and buffers")
            }, "\(net.source.notes)")
        let input = try ModelInput(try Fixtures.npy(Fixtures.path(fixture.input)), layout: nil, for: net)
        let outputs = try Executor(net, threads: 2).run(
            input.values, batch: input.batch, height: input.height, width: input.width)
        #expect(relativeError(outputs, try Fixtures.npy(Fixtures.path(fixture.reference)).values) <= 1e-4)
    }

    /// A whole module holds exactly its state_dict's tensors; torchxrayvision's op_threshs (a buffer of the
    /// top module, turning on a sigmoid and op_norm in its forward) is skipped and said so.
    @Test func theSameTensorsAsTheStateDict() throws {
        let stateDict = try ModelLoader.load(path: Fixtures.path("tv-tiny.pth"))
        for file in [
            "tv-tiny-module.pth", "tv-tiny-module-legacy.pth", "tv-tiny-module-checkpoint.pth", "tv-tiny-traced.pt",
            "tv-tiny-scripted.pt",
        ] {
            let net = try ModelLoader.load(path: Fixtures.path(file))
            #expect(net.tensors.map(\.values) == stateDict.tensors.map(\.values), "\(file)")
            #expect(net.tensors.map(\.name) == stateDict.tensors.map(\.name), "\(file)")
        }
        let monai = try ModelLoader.load(path: Fixtures.path("monai-tiny.ts"))
        #expect(
            monai.tensors.map(\.values)
                == (try ModelLoader.load(path: Fixtures.path("monai-tiny.pth"))).tensors.map(\.values))
        let wrapped = try ModelLoader.load(path: Fixtures.path("tv-tiny-module-checkpoint.pth"))
        #expect(
            wrapped.source.notes.contains(
                "a training checkpoint: the weights are its 'model' entry; its other entries are skipped"))
        let xray = try ModelLoader.load(path: Fixtures.path("xrv-tiny-module.pth"))
        #expect(xray.source.notes.contains("skipped the top module's own tensors (no layer's weights): 'op_threshs'"))
    }

    // MARK: hostile module trees

    /// A module pickle as torch.save writes one: GLOBAL class, EMPTY_TUPLE, NEWOBJ, then BUILD with a
    /// state dict holding 'training' and the attribute `name` set to the pickled `value`.
    static func module(attribute name: String, _ value: [UInt8]) -> Data {
        var bytes: [UInt8] = [0x80, 0x02, UInt8(ascii: "c")] + Array("torchvision.models.densenet\nDenseNet\n".utf8)
        func string(_ text: String) -> [UInt8] {
            [UInt8(ascii: "X")] + withUnsafeBytes(of: UInt32(text.utf8.count).littleEndian, Array.init)
                + Array(text.utf8)
        }
        bytes += [UInt8(ascii: ")"), 0x81, UInt8(ascii: "}"), UInt8(ascii: "(")]
        bytes += string("training") + [0x88] + string(name) + value
        bytes += [UInt8(ascii: "u"), UInt8(ascii: "b"), UInt8(ascii: ".")]
        return Data(bytes)
    }

    static func global(_ module: String, _ name: String) -> [UInt8] {
        [UInt8(ascii: "c")] + Array("\(module)\n\(name)\n".utf8)
    }

    static func call(_ module: String, _ name: String, _ argument: String) -> [UInt8] {
        global(module, name) + [UInt8(ascii: "X")]
            + withUnsafeBytes(of: UInt32(argument.utf8.count).littleEndian, Array.init) + Array(argument.utf8)
            + [0x85, UInt8(ascii: "R")]
    }

    @Test func hostileModuleTreesAreRefusedByNameAndNeverRun() throws {
        try? FileManager.default.removeItem(atPath: PTHTests.marker)
        let touch = "touch \(PTHTests.marker)"
        let payloads: [(Data, String)] = [
            // An attribute that unpickles to os.system (never called, still refused).
            (Self.module(attribute: "hook", Self.global("os", "system")), "os.system"),
            // An eval inside _modules.
            (
                Self.module(
                    attribute: "_modules",
                    [UInt8(ascii: "}"), UInt8(ascii: "(")] + [UInt8(ascii: "X")]
                        + withUnsafeBytes(of: UInt32(8).littleEndian, Array.init) + Array("features".utf8)
                        + Self.call("builtins", "eval", "__import__('os').system('\(touch)')") + [UInt8(ascii: "u")]),
                "builtins.eval"
            ),
            // A REDUCE at the top level, of a class's module function.
            (Data([0x80, 0x02] + Self.call("posix", "system", touch) + [UInt8(ascii: ".")]), "posix.system"),
        ]
        for (pickle, global) in payloads {
            for (file, name) in [(PTHTests.zip(pickle), "evil.pth"), (PTHTests.legacy(pickle), "evil-legacy.pth")] {
                #expect(throws: PTHTests.refusedGlobal(global), "\(name) \(global)") {
                    try Fixtures.loadWritten(file, as: name)
                }
            }
        }
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let evil = try Fixtures.write(PTHTests.legacy(payloads[1].0), as: "evil-legacy.pth", in: folder)
        let report = try densekit(["inspect", evil])
        #expect(report.status == 2 && report.stderr.hasPrefix("error: \(evil): pickle global 'builtins.eval': "))
        #expect(report.stderr.split(separator: "\n").count == 1, "\(report.stderr)")
        #expect(!FileManager.default.fileExists(atPath: PTHTests.marker), "a payload ran")
    }

    // MARK: lying module trees

    /// The stored members of a fixture's zip (TorchScript deflates its code/, which DenseKit never reads),
    /// one changed or removed by `edit`, zipped again.
    static func rezipped(_ fixture: String, _ edit: (String, Data) -> Data?) throws -> Data {
        let archive = try ZipArchive(data: try Fixtures.data(fixture))
        var members: [(name: String, data: Data)] = []
        for name in archive.entries.keys.sorted() where archive.entries[name]?.method == 0 {
            guard let data = try archive.member(name), let kept = edit(name, data) else { continue }
            members.append((name, kept))
        }
        return ZipWriting.stored(members)
    }

    @Test func lyingModuleTreesAreNamed() throws {
        // A module whose _parameters is not a dict.
        let notADict = Self.module(attribute: "_modules", [UInt8(ascii: "}")])
        var bytes = [UInt8](notADict)
        bytes.insert(
            contentsOf: [UInt8(ascii: "X")] + withUnsafeBytes(of: UInt32(11).littleEndian, Array.init)
                + Array("_parameters".utf8) + [UInt8(ascii: "]")], at: bytes.count - 3)
        #expect(
            throws: ImportError.mismatch(
                .part("module '(root)' (torchvision.models.densenet.DenseNet)"), expected: "'_parameters' a dict",
                found: "another value")
        ) { try Fixtures.loadWritten(PTHTests.zip(Data(bytes)), as: "lie.pth") }
        // A tree that refers back to itself: the root (memo 0, before its BUILD) as its own submodule.
        var cycle: [UInt8] = [0x80, 0x02] + Self.global("torchvision.models.densenet", "DenseNet")
        cycle += [UInt8(ascii: ")"), 0x81, UInt8(ascii: "q"), 0, UInt8(ascii: "}"), UInt8(ascii: "(")]
        cycle += [UInt8(ascii: "X")] + withUnsafeBytes(of: UInt32(8).littleEndian, Array.init) + Array("_modules".utf8)
        cycle += [UInt8(ascii: "}"), UInt8(ascii: "X")] + withUnsafeBytes(of: UInt32(4).littleEndian, Array.init)
        cycle += Array("self".utf8) + [UInt8(ascii: "h"), 0, UInt8(ascii: "s")]
        cycle += [UInt8(ascii: "u"), UInt8(ascii: "b"), UInt8(ascii: ".")]
        #expect(
            throws: ImportError.malformed(
                .part("module 'self' (torchvision.models.densenet.DenseNet)"),
                problem: "an object without its state (a module tree that refers back to itself?)")
        ) { try Fixtures.loadWritten(PTHTests.zip(Data(cycle)), as: "cycle.pth") }
        // A TorchScript archive whose data.pkl names a storage that is not under data/ (removed).
        let missing = try Self.rezipped("tv-tiny-traced.pt") { name, data in name.hasSuffix("/data/0") ? nil : data }
        do {
            _ = try Fixtures.loadWritten(missing, as: "missing.pt")
            Issue.record("a missing storage was not noticed")
        } catch let error as ImportError {
            guard case .mismatch(.tensor(let tensor), _, let found) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(tensor.hasPrefix("features.") && found == "no such storage", "\(error)")
        }
    }
}
