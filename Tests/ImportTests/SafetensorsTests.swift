import DenseKit
import DenseKitExecute
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// safetensors files written by `safetensors.torch.save_file` from torchvision's DenseNet state_dict
/// (scripts/make_torch_fixtures.py): they run to torch's output, and every broken layout or lying
/// value, made here from them, is refused naming the tensor with what was expected and found.
@Suite struct SafetensorsTests {
    @Test(arguments: [
        ("tv-tiny.safetensors", "tv-tiny.out.npy", "f32"),  // torch's own output for these weights
        ("tv-tiny-fp16.safetensors", "tv-tiny-fp16.out.npy", "f16"),  // torch, loading the file (strict)
        ("tv-tiny-bf16.safetensors", "tv-tiny-bf16.out.npy", "bf16"),
        ("tv-tiny-module-2017.safetensors", "tv-tiny.out.npy", "f32"),  // 'module.' prefix, 'norm.1' names
    ])
    func runsToTorchsOutput(_ fixture: (String, String, String)) throws {
        let net = try ModelLoader.load(path: Fixtures.path(fixture.0))
        #expect(net.source.format == .safetensors && net.storedDTypes.contains(fixture.2))
        let modelInput = try ModelInput(try Fixtures.npy(Fixtures.path("input-64.npy")), layout: nil, for: net)
        let outputs = try Executor(net, threads: 2).run(
            modelInput.values, batch: modelInput.batch, height: modelInput.height, width: modelInput.width)
        #expect(relativeError(outputs, try Fixtures.npy(Fixtures.path(fixture.1)).values) <= 1e-4)
        // torch's parameters() for the same model, recorded with its ONNX export.
        let meta = try Fixtures.meta(Fixtures.path("tv-tiny-legacy-opset17.meta.json"))
        let report = try Verifier().verify(net)
        #expect(
            report.parameters.trainable == meta.trainable
                && report.parameters.withBatchNormStatistics == meta.withBatchNormStatistics)
        #expect(net.head.summary == "global avg pool, linear 16 -> 10, logits")
        #expect(net.source.notes.contains("BatchNorm epsilon assumed 1e-5 (torchvision's): a state_dict stores none"))
    }

    @Test func aCIFARStemIsToldFromTheKeys() throws {
        let net = try ModelLoader.load(path: Fixtures.path("cifar-bc-tiny.safetensors"))
        #expect(net.stem.conv.kernel == 3 && net.stem.conv.stride == 1 && net.stem.conv.pads == [1, 1, 1, 1])
        #expect(net.stem.norm == nil && net.stem.pool == nil)
        let modelInput = try ModelInput(try Fixtures.npy(Fixtures.path("input-32.npy")), layout: nil, for: net)
        let outputs = try Executor(net).run(
            modelInput.values, batch: modelInput.batch, height: modelInput.height, width: modelInput.width)
        #expect(
            relativeError(outputs, try Fixtures.npy(Fixtures.path("cifar-bc-tiny-legacy-opset17.out.npy")).values)
                <= 1e-4)
        let meta = try Fixtures.meta(Fixtures.path("cifar-bc-tiny-legacy-opset17.meta.json"))
        let report = try Verifier().verify(net)
        #expect(report.parameters.trainable == meta.trainable && report.spec.name == "densenet-bc-L100-k12")
    }

    @Test func theSameWeightsAsTheONNXExportDiffWithinTolerance() throws {
        let onnx = try ModelLoader.load(path: Fixtures.path("tv-tiny-legacy-opset17.onnx"))
        let modelInput = try ModelInput(try Fixtures.npy(Fixtures.path("input-64.npy")), layout: nil, for: onnx)
        for file in ["tv-tiny.safetensors", "tv-tiny-module-2017.safetensors", "tv-tiny.pth", "tv-tiny-legacy.pth"] {
            let report = try ModelDiff(try ModelLoader.load(path: Fixtures.path(file)), onnx).run(
                modelInput.values, batch: modelInput.batch, height: modelInput.height, width: modelInput.width)
            #expect(report.withinTolerance, "\(file): \(String(describing: report.firstDivergence))")
        }
    }

    func error(_ data: Data) -> ImportError? {
        do {
            _ = try Fixtures.loadWritten(data, as: "m.safetensors")
            return nil
        } catch let error as ImportError {
            return error
        } catch {
            Issue.record("not an ImportError: \(error)")
            return nil
        }
    }

    @Test func brokenLayoutsAreRefused() throws {
        let good = try Fixtures.data("tv-tiny.safetensors")
        #expect(error(try SafetensorsEditing.withHeader(good) { _ in }) == nil)
        let stem = "features.conv0.weight"
        func entry(_ headerObject: inout [String: Any], _ key: String, _ value: Any) {
            var entryValue = headerObject[stem] as! [String: Any]
            entryValue[key] = value
            headerObject[stem] = entryValue
        }
        let headerLength = Int(good[0]) | Int(good[1]) << 8
        let offsets =
            ((try JSONSerialization.jsonObject(with: good.subdata(in: 8..<(8 + Int(good[0]) + Int(good[1]) << 8)))
            as! [String: Any])[stem] as! [String: Any])["data_offsets"] as! [Int]
        let buffer = good.count - 8 - headerLength
        func header(_ found: Int) -> ImportError {
            .mismatch(
                .part("header"),
                expected: "a JSON header of at most \(good.count - 8) bytes (the cap, and what the file holds)",
                found: "\(found) bytes")
        }
        func stemMismatch(_ expected: String, _ found: String) -> ImportError {
            .mismatch(.tensor(stem), expected: expected, found: found)
        }
        let cases: [(Data, ImportError)] = [
            (withUnsafeBytes(of: UInt64(good.count).littleEndian) { Data($0) } + good.dropFirst(8), header(good.count)),
            (withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { Data($0) } + good.dropFirst(8), header(1 << 40)),
            (
                try SafetensorsEditing.withHeader(good) { entry(&$0, "dtype", "F8_E4M3") },
                stemMismatch("dtype F32, F16, BF16, F64 or an integer type", "F8_E4M3")
            ),
            (
                try SafetensorsEditing.withHeader(good) { entry(&$0, "shape", [1 << 20, 1 << 20, 1, 1]) },
                stemMismatch("at most 2^31 values", "shape [1048576, 1048576, 1, 1]")
            ),
            (
                try SafetensorsEditing.withHeader(good) { entry(&$0, "shape", [8, 3, 7, -7]) },
                stemMismatch("at most 8 non-negative dims", "shape [8, 3, 7, -7]")
            ),
            (
                try SafetensorsEditing.withHeader(good) { entry(&$0, "shape", [8, 3, 7, 6]) },
                stemMismatch("4032 bytes for shape [8, 3, 7, 6] of F32", "4704")
            ),
            (
                try SafetensorsEditing.withHeader(good) {
                    entry(&$0, "data_offsets", [offsets[0] + 4, offsets[1] + 4])
                },
                stemMismatch(
                    "data at byte \(offsets[0]) of the buffer (regions contiguous, not overlapping)",
                    "data_offsets [\(offsets[0] + 4), \(offsets[1] + 4)]")
            ),
            (
                try SafetensorsEditing.withHeader(good) {
                    entry(&$0, "data_offsets", [offsets[0], offsets[1] + (1 << 40)])
                },
                stemMismatch("data_offsets within the \(buffer)-byte buffer", "\([offsets[0], offsets[1] + (1 << 40)])")
            ),
            (
                good + Data([0, 0, 0, 0]),
                .mismatch(
                    .part("buffer"), expected: "\(buffer) bytes (the end of the last tensor)", found: "\(buffer + 4)")
            ),
        ]
        for (data, expected) in cases {
            #expect(error(data) == expected)
        }
        let metadata = error(try SafetensorsEditing.withHeader(good) { $0["__metadata__"] = ["format": 3] })
        guard case .mismatch(.part("__metadata__"), "a map of strings to strings", _)? = metadata else {
            Issue.record("__metadata__ of numbers: \(String(describing: metadata))")
            return
        }
        // Cut short, the last tensor's data runs past the buffer.
        let cut = error(good.prefix(good.count - 4))
        guard case .mismatch(.tensor, "data_offsets within the \(buffer - 4)-byte buffer", _)? = cut else {
            Issue.record("cut by 4 bytes: \(String(describing: cut))")
            return
        }
        // Cut anywhere: always an error, never a crash.
        for cut in stride(from: 0, to: good.count, by: good.count / 40) {
            #expect(error(good.prefix(cut)) != nil, "cut at \(cut)")
        }
    }

    @Test func keysAndShapesThatLieAreNamed() throws {
        typealias S = SafetensorsEditing
        let variance = "features.norm0.running_var"
        let stateDict = ImportSubject.part("state_dict")
        let cases: [(Data, ImportError)] = [
            (
                try S.rewritten("tv-tiny.safetensors") {
                    $0[variance]?.shape = [7]
                    $0[variance]?.bytes.removeLast(4)
                },
                .mismatch(
                    .weight(of: .layer(.stem, part: "norm"), role: "variance", name: variance),
                    expected: "8 values (one per channel)", found: "7")
            ),
            (
                try S.rewritten("tv-tiny.safetensors") {
                    $0["features.extra.weight"] = S.Entry(dtype: "F32", shape: [1], bytes: Data(count: 4))
                },
                .mismatch(
                    stateDict,
                    expected: "only DenseNet keys (features.*, and classifier.* or MONAI's class_layers.out.*)",
                    found: "1 other: 'features.extra.weight'")
            ),
            (
                try S.rewritten("tv-tiny.safetensors") { $0["features.norm5.weight"] = nil },
                .mismatch(stateDict, expected: "a float tensor 'features.norm5.weight'", found: "no such key")
            ),
            (
                try S.rewritten("tv-tiny.safetensors") { entryValue in
                    for k in ["weight", "bias"] {
                        entryValue["classifier.0.\(k)"] = entryValue["classifier.\(k)"]
                        entryValue["classifier.3.\(k)"] = entryValue["classifier.\(k)"]
                        entryValue["classifier.\(k)"] = nil
                    }
                },
                .mismatch(
                    .part("classifier"),
                    expected:
                        "one Linear layer (a state_dict stores no activations, so the one between two is unknown)",
                    found: "Linear layers at classifier.0, classifier.3")
            ),
        ]
        for (data, expected) in cases {
            #expect(error(data) == expected)
        }
        // Without its stem's key, the file is no torchvision state_dict; the keys it has are sampled.
        let stemless = error(try S.rewritten("tv-tiny.safetensors") { $0["features.conv0.weight"] = nil })
        guard
            case .mismatch(
                stateDict,
                "a torchvision DenseNet's keys, first 'features.conv0.weight' (after any prefix such as 'module.')",
                let found)? = stemless
        else {
            Issue.record("\(String(describing: stemless))")
            return
        }
        #expect(found.hasPrefix("'classifier.bias', "), "\(found)")
        // A CheXNet-style classifier inside a Sequential: its activation is unknown.
        let sequential = try S.rewritten("tv-tiny.safetensors") { entryValue in
            for k in ["weight", "bias"] {
                entryValue["module.classifier.0.\(k)"] = entryValue["classifier.\(k)"]
                entryValue["classifier.\(k)"] = nil
            }
            for k in Array(entryValue.keys) where !k.hasPrefix("module.") {
                entryValue["module." + k] = entryValue[k]
                entryValue[k] = nil
            }
        }
        let net = try Fixtures.loadWritten(sequential, as: "chexnet.safetensors")
        #expect(net.head.summary == "global avg pool, linear 16 -> 10, activation unknown (the file stores none)")
    }
}
