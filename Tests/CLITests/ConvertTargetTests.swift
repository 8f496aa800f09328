import DenseKit
import DenseKitFormats
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// `densekit convert` to every target, each written file loaded and run in the framework it is for
/// (onnxruntime after onnx.checker's full check; torch + torchvision with load_state_dict(strict=True);
/// tf_keras and Keras 3 load_weights; TensorFlow Lite's interpreter) and compared with the source's reference
/// output, which the
/// framework that made the fixture computed: within 1e-4 of its largest value.
@Suite struct ConvertTargetTests {
    /// A source fixture with its framework-made reference and what to build to load its weights.
    struct Source {
        var file: String
        var reference: String
        var input: String
        var layout: String
        var size = 64
        var pool: String? = "average"
        var dense: [(Int, String)]
        var application: String? = nil

        func model(weightsArgument: Bool = false) -> [String: Any] {
            var entriesByKey: [String: Any] = [
                "blocks": [2, 2, 2], "growth": 4, "stem": 8, "bnSize": 4, "size": size,
                "pool": pool ?? NSNull(), "dense": dense.map { [$0.0, $0.1] as [Any] },
            ]
            if let application {
                entriesByKey["application"] = application
                entriesByKey["weightsArgument"] = weightsArgument
            }
            return entriesByKey
        }
    }

    static let tvLogits = [(10, "linear")], kerasSoftmax = [(10, "softmax")]
    static func tiny(
        _ file: String, _ reference: String, nhwc: Bool, dense: [(Int, String)], pool: String? = "average",
        size: Int = 64
    ) -> Source {
        Source(
            file: Fixtures.path(file), reference: Fixtures.path(reference),
            input: Fixtures.path(size == 80 ? "input-80-nhwc.npy" : nhwc ? "input-64-nhwc.npy" : "input-64.npy"),
            layout: nhwc ? "nhwc" : "nchw", size: size, pool: pool, dense: dense)
    }

    static let sources: [Source] = [
        tiny("tv-tiny-legacy-opset17.onnx", "tv-tiny-legacy-opset17.out.npy", nhwc: false, dense: tvLogits),
        tiny("keras2-tiny.h5", "keras2-tiny.out.npy", nhwc: true, dense: kerasSoftmax),
        tiny("keras3-tiny.keras", "keras3-tiny.out.npy", nhwc: true, dense: kerasSoftmax),
        tiny("tv-tiny.pth", "tv-tiny.out.npy", nhwc: false, dense: tvLogits),
        tiny("tv-tiny.safetensors", "tv-tiny.out.npy", nhwc: false, dense: tvLogits),
    ]

    static let heads: [Source] = [
        tiny(
            "tv-tiny-sigmoid14-legacy-opset17.onnx", "tv-tiny-sigmoid14-legacy-opset17.out.npy", nhwc: false,
            dense: [(14, "sigmoid")]),
        tiny(
            "tv-tiny-mlp-dynamo-opset18.onnx", "tv-tiny-mlp-dynamo-opset18.out.npy", nhwc: false,
            dense: [(12, "relu"), (5, "sigmoid")]),
        tiny(
            "keras3-tiny-mlp.keras", "keras3-tiny-mlp.out.npy", nhwc: true, dense: [(12, "relu"), (3, "tanh")],
            pool: "max"),
        tiny("keras3-tiny-none.keras", "keras3-tiny-none.out.npy", nhwc: true, dense: [], pool: nil),
        tiny("keras3-tiny-avg.keras", "keras3-tiny-avg.out.npy", nhwc: true, dense: []),
        // Backbones nested in the user's model (Keras 2 Sequential, Keras 3 functional with pooling="max").
        tiny(
            "keras2-tiny-nested-sigmoid14.h5", "keras2-tiny-nested-sigmoid14.out.npy", nhwc: true,
            dense: [(14, "sigmoid")]),
        tiny(
            "keras3-tiny-nested-max5.keras", "keras3-tiny-nested-max5.out.npy", nhwc: true, dense: [(5, "softmax")],
            pool: "max"),
        tiny(
            "keras3-tiny-80-softmax5.keras", "keras3-tiny-80-softmax5.out.npy", nhwc: true, dense: [(5, "softmax")],
            size: 80),
    ]

    static let frameworkTargets: [(ConversionTarget, Frameworks.Framework)] = [
        (.onnx, .onnxruntime), (.safetensors, .torch), (.kerasH5, .tfKeras), (.kerasWeightsH5, .keras3),
        (.tflite, .tflite),
    ]

    /// A written file to check in a framework: its case and the reference its output must match.
    struct Check {
        var framework: Frameworks.Framework
        var run: Frameworks.Case
        var reference: String
        /// Applied to the reference before comparing (a Keras model that adds softmax to logits).
        var through: Head.Activation? = nil
        /// The reference is a feature map in the other layout than the framework's output.
        var transposed = false
    }

    /// Converts `source` to `target` as `name` in `folder`; expects exit 0 and a bit-identical validation.
    @discardableResult
    static func convert(_ source: String, _ name: String, in folder: URL, _ extra: [String] = []) throws -> [String:
        Any]
    {
        let out = folder.appendingPathComponent(name).path
        let outcome = try densekit(["convert", source, "-o", out, "--accept-deviations", "--json"] + extra)
        #expect(outcome.status == 0, "\(source) -> \(name): \(outcome.stderr)")
        let parsed = try outcome.json()
        #expect((parsed["validation"] as? [String: Any])?["bitIdentical"] as? Bool == true, "\(name)")
        #expect(
            parsed["format"] as? String == ConversionTarget(path: name)?.name || !extra.isEmpty,
            "\(name): \(parsed["format"] ?? "-")")
        return parsed
    }

    /// Runs the checks, grouped by framework, and compares each output with its reference.
    static func verify(_ checks: [Check], in folder: URL) throws {
        for framework in [Frameworks.Framework.onnxruntime, .torch, .tfKeras, .keras3, .tflite] {
            try Frameworks.run(framework, checks.filter { $0.framework == framework }.map(\.run), in: folder)
        }
        for check in checks {
            var reference = try NPY.read(path: check.reference).values
            if let through = check.through {
                let per = reference.count / 2
                for shape in 0..<2 {
                    reference.withUnsafeMutableBufferPointer {
                        through.apply(UnsafeMutableBufferPointer(rebasing: $0[(shape * per)..<((shape + 1) * per)]))
                    }
                }
            }
            if check.transposed {
                // NHWC (Keras's feature map) to NCHW, or back.
                let outcome = try NPY.read(path: check.reference)
                let shape = outcome.shape
                let toNCHW = check.run.layout == "nhwc"
                let (batch, height, width, channels) =
                    toNCHW ? (shape[0], shape[1], shape[2], shape[3]) : (shape[0], shape[2], shape[3], shape[1])
                for b in 0..<batch {
                    for y in 0..<height {
                        for x in 0..<width {
                            for ch in 0..<channels {
                                let nhwc = ((b * height + y) * width + x) * channels + ch
                                let nchw = ((b * channels + ch) * height + y) * width + x
                                if toNCHW {
                                    reference[nchw] = outcome.values[nhwc]
                                } else {
                                    reference[nhwc] = outcome.values[nchw]
                                }
                            }
                        }
                    }
                }
            }
            let output = try NPY.read(path: check.run.output)
            #expect(output.values.count == reference.count, "\(check.run.file): \(output.shape)")
            guard output.values.count == reference.count else { continue }
            let error = relativeError(output.values, reference)
            #expect(error <= 1e-4, "\(check.framework.rawValue) on \(check.run.file): \(error) of the largest value")
        }
    }

    static func check(
        _ source: Source, _ target: ConversionTarget, _ framework: Frameworks.Framework, file: String, in folder: URL,
        model: [String: Any]? = nil, through: Head.Activation? = nil
    ) -> Check {
        let output = folder.appendingPathComponent(URL(fileURLWithPath: file).lastPathComponent + ".out.npy").path
        return Check(
            framework: framework,
            run: Frameworks.Case(
                file: file, input: source.input, layout: source.layout, output: output,
                model: model ?? source.model()),
            reference: source.reference, through: through,
            transposed: source.pool == nil && (source.layout == "nhwc") != framework.nhwc)
    }

    /// Every source kind (ONNX, Keras .h5 and .keras, .pth, safetensors, and a .dnk) to every target.
    @Test func everySourceReachesEveryTarget() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var sources = Self.sources
        var dnk = sources[2]
        try Self.convert(dnk.file, "keras3-tiny.dnk", in: folder)
        dnk.file = folder.appendingPathComponent("keras3-tiny.dnk").path
        sources.append(dnk)
        var checks: [Check] = []
        for (i, source) in sources.enumerated() {
            for (target, framework) in Self.frameworkTargets {
                let name = "s\(i)-\(URL(fileURLWithPath: source.file).lastPathComponent)\(target.fileExtension)"
                try Self.convert(source.file, name, in: folder)
                checks.append(
                    Self.check(source, target, framework, file: folder.appendingPathComponent(name).path, in: folder))
            }
            // .dnk: DenseKit's own executor on the written file.
            let name = "s\(i).dnk"
            let out = folder.appendingPathComponent(name + ".out.npy").path
            try Self.convert(source.file, name, in: folder)
            let outcome = try densekit([
                "run", folder.appendingPathComponent(name).path, "--input", source.input, "--output", out,
            ])
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(relativeError(try NPY.read(path: out).values, try NPY.read(path: source.reference).values) <= 1e-4)
        }
        try Self.verify(checks, in: folder)
    }

    /// One-channel models of the wider ecosystem (MONAI's DenseNet class as a state_dict and as TorchScript,
    /// torchxrayvision's as a whole pickled module) to ONNX (onnxruntime), torchvision's names (torch, with
    /// the stem replaced as the conversion's note says) and `.dnk`: the package's own output.
    @Test(arguments: [
        ("monai-tiny.pth", "monai-tiny.out.npy"), ("monai-tiny.ts", "monai-tiny.out.npy"),
        ("xrv-tiny-module.pth", "xrv-tiny-module.logits.npy"),
    ])
    func oneChannelEcosystemModelsReachONNXSafetensorsAndDNK(_ fixture: (String, String)) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = Source(
            file: Fixtures.path(fixture.0), reference: Fixtures.path(fixture.1),
            input: Fixtures.path("input-64-gray.npy"), layout: "nchw", dense: [(3, "linear")])
        var model = source.model()
        model["inChannels"] = 1
        var checks: [Check] = []
        for (target, framework) in Self.frameworkTargets where target == .onnx || target == .safetensors {
            let name = "converted\(target.fileExtension)"
            let written = try Self.convert(source.file, name, in: folder)
            if target == .safetensors {
                #expect(
                    (written["conventions"] as? [[String: Any]])?.contains {
                        ($0["detail"] as? String)?.hasSuffix(
                            "with model.features.conv0 = nn.Conv2d(1, 8, kernel_size=7, stride=2, padding=3, "
                                + "bias=False) (1 input channel)") == true
                    } == true, "\(written)")
            }
            checks.append(
                Self.check(
                    source, target, framework, file: folder.appendingPathComponent(name).path, in: folder, model: model)
            )
        }
        try Self.verify(checks, in: folder)
        try Self.convert(source.file, "converted.dnk", in: folder)
        let out = folder.appendingPathComponent("converted.dnk.out.npy").path
        let outcome = try densekit([
            "run", folder.appendingPathComponent("converted.dnk").path, "--input", source.input, "--output", out,
        ])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(relativeError(try NPY.read(path: out).values, try NPY.read(path: source.reference).values) <= 1e-4)
    }

    /// Fine-tuned heads and feature extractors: a sigmoid, MLPs (one on a max pool), no pool, a pool
    /// without a classifier, another input size.
    @Test func headsReachEveryTarget() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var checks: [Check] = []
        for (i, source) in Self.heads.enumerated() {
            for (target, framework) in Self.frameworkTargets {
                let name = "h\(i)-\(URL(fileURLWithPath: source.file).lastPathComponent)\(target.fileExtension)"
                try Self.convert(source.file, name, in: folder)
                checks.append(
                    Self.check(source, target, framework, file: folder.appendingPathComponent(name).path, in: folder))
            }
        }
        try Self.verify(checks, in: folder)
    }

    /// --fold-bn and the opset range; keras.applications' default softmax on a torchvision model's logits;
    /// round trips .onnx -> .h5 -> .onnx and .pth -> .safetensors -> .dnk.
    @Test func optionsAndRoundTrips() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let tv = Self.sources[3]
        let keras = Self.sources[1]
        let onnx = Self.sources[0]
        func path(_ name: String) -> String { folder.appendingPathComponent(name).path }
        var checks: [Check] = []
        let folded = try Self.convert(tv.file, "folded.onnx", in: folder, ["--fold-bn"])
        #expect(
            (folded["conventions"] as? [[String: Any]])?.contains {
                ($0["detail"] as? String)?.contains("7 BatchNorms") == true
            } == true)
        try Self.convert(keras.file, "opset13.onnx", in: folder, ["--opset", "13", "--fold-bn"])
        try Self.convert(tv.file, "opset21.onnx", in: folder, ["--opset", "21"])
        checks += [
            Self.check(tv, .onnx, .onnxruntime, file: path("folded.onnx"), in: folder),
            Self.check(keras, .onnx, .onnxruntime, file: path("opset13.onnx"), in: folder),
            Self.check(tv, .onnx, .onnxruntime, file: path("opset21.onnx"), in: folder),
        ]
        // A Keras model built with keras.applications' default classifier activation applies softmax.
        try Self.convert(tv.file, "default-softmax.h5", in: folder)
        var softmax = tv.model()
        softmax["dense"] = [[10, "softmax"] as [Any]]
        checks.append(
            Self.check(
                tv, .kerasH5, .tfKeras, file: path("default-softmax.h5"), in: folder, model: softmax, through: .softmax)
        )

        try Self.convert(onnx.file, "trip.h5", in: folder)
        try Self.convert(path("trip.h5"), "trip.onnx", in: folder)
        checks.append(Self.check(onnx, .onnx, .onnxruntime, file: path("trip.onnx"), in: folder))
        try Self.convert(tv.file, "trip.safetensors", in: folder)
        try Self.convert(path("trip.safetensors"), "trip.dnk", in: folder)
        for (a, b) in [(onnx.file, path("trip.onnx")), (tv.file, path("trip.dnk"))] {
            let ya = path("a.npy")
            let yb = path("b.npy")
            #expect(try densekit(["run", a, "--input", tv.input, "--output", ya]).status == 0)
            #expect(try densekit(["run", b, "--input", tv.input, "--output", yb]).status == 0)
            #expect(
                try Data(contentsOf: URL(fileURLWithPath: ya)) == Data(contentsOf: URL(fileURLWithPath: yb)), "\(b)")
        }
        try Self.verify(checks, in: folder)
    }

    /// Full-size DenseNet-121 (torchvision's, and Keras's) through every target, loaded by
    /// torchvision.models.densenet121, tf_keras.applications.DenseNet121(weights=path) and Keras 3.
    @Test func fullSizeDenseNet121ThroughEveryTarget() throws {
        guard let full = Fixtures.full else {
            print("fixtures/full absent (make fixtures-full): the full-size conversions were not checked")
            return
        }
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let tv = Source(
            file: "\(full)/densenet121.pth", reference: "\(full)/densenet121.out.npy", input: "\(full)/input-224.npy",
            layout: "nchw", size: 224, dense: [(1000, "linear")], application: "DenseNet121")
        let keras = Source(
            file: "\(full)/keras2-densenet121.h5", reference: "\(full)/keras2-densenet121.out.npy",
            input: "\(full)/input-224-nhwc.npy", layout: "nhwc", size: 224, dense: [(1000, "softmax")],
            application: "DenseNet121")
        var checks: [Check] = []
        for source in [tv, keras] {
            let stem = URL(fileURLWithPath: source.file).deletingPathExtension().lastPathComponent
            for (target, framework) in Self.frameworkTargets {
                let name = "\(stem)\(target.fileExtension)"
                try Self.convert(source.file, name, in: folder)
                checks.append(
                    Self.check(
                        source, target, framework, file: folder.appendingPathComponent(name).path, in: folder,
                        model: source.model(weightsArgument: target == .kerasH5)))
            }
            let dnk = folder.appendingPathComponent("\(stem).dnk").path
            let out = dnk + ".out.npy"
            try Self.convert(source.file, "\(stem).dnk", in: folder)
            #expect(try densekit(["run", dnk, "--input", source.input, "--output", out]).status == 0)
            #expect(relativeError(try NPY.read(path: out).values, try NPY.read(path: source.reference).values) <= 1e-4)
        }
        try Self.verify(checks, in: folder)
    }

    // MARK: what is refused, and what is reported

    @Test func anUnknownOrImpossibleTargetWritesNothing() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        func path(_ name: String) -> String { folder.appendingPathComponent(name).path }
        let tv = Fixtures.path("tv-tiny.pth")
        let cifar = Fixtures.path("cifar-bc-tiny.safetensors")
        let cases: [([String], String, String)] = [
            (
                ["convert", tv, "-o", path("m.bin")], path("m.bin"),
                """
                the extension names no format DenseKit writes: use one of dnk (.dnk), onnx (.onnx), safetensors \
                (.safetensors), keras-h5 (.h5), keras-weights-h5 (.weights.h5), tflite (.tflite), or --to
                """
            ),
            (
                ["convert", tv, "-o", path("m.onnx"), "--to", "keras-h5"], path("m.onnx"),
                "--to keras-h5, but the extension .onnx is onnx's"
            ),
            (
                ["convert", tv, "-o", path("m.h5"), "--fold-bn"], path("m.h5"),
                "--opset and --fold-bn are for ONNX output, not keras-h5"
            ),
            (
                ["convert", tv, "-o", path("m.onnx"), "--opset", "12", "--accept-deviations"], tv,
                "cannot write onnx: opset 12 is outside 13 to 21 (--opset)"
            ),
            (
                ["convert", tv, "-o", path("m.onnx"), "--dtype", "f16", "--accept-deviations"], tv,
                "cannot write onnx: weights are written as f32, not f16 (--dtype)"
            ),
            (
                ["convert", cifar, "-o", path("m.weights.h5"), "--accept-deviations"], cifar,
                """
                cannot write keras-weights-h5: its stem is a 3x3 conv without a max pool; keras.applications' \
                DenseNet has a 7x7/2 conv, BN, ReLU and a 3x3/2 max pool
                """
            ),
        ]
        for (args, file, message) in cases {
            let outcome = try densekit(args)
            #expect(outcome.status == 2, "\(args): \(outcome.stderr)")
            #expect(outcome.stderr.hasPrefix("error: \(file): \(message)"), "\(outcome.stderr)")
            #expect(outcome.stderr.split(separator: "\n").count == 1)
        }
        // A --to that names no format is refused by the parser, before the model is read.
        let unknown = try densekit(["convert", "/nonexistent.pth", "-o", path("m.bin"), "--to", "pickle"])
        #expect(unknown.status == 2 && unknown.stderr.split(separator: "\n").count == 1)
        #expect(unknown.stderr.hasPrefix("error: The value 'pickle' is invalid for '--to <to>'"), "\(unknown.stderr)")
        // A --to that agrees with the extension, or names the format of an unusual one, is fine.
        #expect(
            try densekit(["convert", tv, "-o", path("m.bin"), "--to", "safetensors", "--accept-deviations"]).status == 0
        )
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["m.bin"])
        // A CIFAR net has no torchvision constructor, but its state_dict is written under torchvision's names.
        let parsed = try Self.convert(cifar, "cifar.safetensors", in: folder)
        #expect(
            (parsed["conventions"] as? [[String: Any]])?.contains {
                ($0["detail"] as? String)?.hasPrefix(
                    "torchvision.models.DenseNet cannot build this model (its stem is a 3x3 conv") == true
            } == true)
    }

    /// What each target adds, drops or changes, in text and JSON.
    @Test func conventionsAreReported() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let keras = Fixtures.path("keras2-tiny.h5")
        let tv = Fixtures.path("tv-tiny-legacy-opset17.onnx")
        func conventions(_ parsed: [String: Any]) -> [String] {
            ((parsed["conventions"] as? [[String: Any]]) ?? []).map {
                "\($0["change"] ?? "") \($0["subject"] ?? ""): \($0["detail"] ?? "")"
            }
        }
        let toTorch = conventions(try Self.convert(keras, "k.safetensors", in: folder))
        #expect(
            toTorch.contains {
                $0.hasPrefix(
                    """
                    drops activation: a state_dict stores no activations: torchvision's DenseNet outputs the \
                    classifier's logits where the source applied softmax
                    """
                )
            })
        #expect(
            toTorch.contains {
                $0.hasPrefix("changes BatchNorm epsilon: torchvision's is 1e-05, the source's 1.001e-05")
            })
        #expect(toTorch.contains("changes input layout: torchvision takes NCHW; the source took NHWC"))
        #expect(
            toTorch.contains(
                """
                changes model: load into torchvision.models.DenseNet(growth_rate=4, block_config=(2, 2, 2), \
                num_init_features=8, bn_size=4, num_classes=10)
                """
            ))
        let toKeras = conventions(try Self.convert(tv, "t.weights.h5", in: folder))
        #expect(toKeras.contains { $0.hasPrefix("adds BatchNorm: the 7 BatchNorms the source had folded") })
        #expect(toKeras.contains { $0.hasPrefix("adds softmax: keras.applications' DenseNet applies softmax") })
        #expect(
            toKeras.contains { $0.hasPrefix("changes BatchNorm epsilon: Keras's is 1.001e-05, the source's 1e-05") })
        #expect(
            conventions(try Self.convert(keras, "k.onnx", in: folder)) == [
                "changes input layout: the ONNX model takes NCHW; the source took NHWC"
            ])
        // The text output lists them too.
        let outcome = try densekit([
            "convert", keras, "-o", folder.appendingPathComponent("k2.safetensors").path, "--accept-deviations",
        ])
        #expect(outcome.stdout.contains("\ndrops activation: a state_dict stores no activations"))
        #expect(
            outcome.stdout.hasPrefix("wrote \(folder.appendingPathComponent("k2.safetensors").path): safetensors, "))
    }

    /// The files hold what the issue asks: readable canonical names, the producer, the head and
    /// provenance where the format has room.
    @Test func writtenFilesNameTheirContents() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = Fixtures.path("tv-tiny-sigmoid14-legacy-opset17.onnx")
        try Self.convert(source, "m.onnx", in: folder)
        try Self.convert(source, "m.safetensors", in: folder)
        let onnx = try Data(contentsOf: folder.appendingPathComponent("m.onnx"))
        for name in [
            "block3.layer2.conv2.weight", "transition1.norm.running_var", "head.classifier.weight",
            "head.classifier.sigmoid", "densekit",
        ] {
            #expect(onnx.range(of: Data(name.utf8)) != nil, "\(name)")
        }
        let st = try Data(contentsOf: folder.appendingPathComponent("m.safetensors"))
        let length = Int(st.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = try #require(
            try JSONSerialization.jsonObject(with: st.subdata(in: 8..<(8 + length))) as? [String: Any])
        let metadata = try #require(header["__metadata__"] as? [String: String])
        #expect(metadata["format"] == "pt")
        #expect(metadata["densekit.head"] == #"{"activations":["sigmoid"],"pool":"average"}"#)
        #expect(metadata["densekit.source_sha256"] == (try SourceFingerprint.sha256(ofFile: source)))
        #expect(metadata["densekit.version"] == DenseKitVersion.string)
        #expect((header["features.norm0.num_batches_tracked"] as? [String: Any])?["dtype"] as? String == "I64")
        let inspect = try densekit(["inspect", folder.appendingPathComponent("m.safetensors").path])
        #expect(
            inspect.stdout.contains("safetensors (densekit \(DenseKitVersion.string) from onnx (format pt))"),
            "\(inspect.stdout)")
    }

    /// The keys and shapes are exactly the ones torch saved for the same model.
    @Test func safetensorsKeysAreTorchvisions() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        func header(_ path: String) throws -> [String: [Int]] {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let length = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            let object = try #require(
                try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + length))) as? [String: Any])
            return object.compactMapValues { ($0 as? [String: Any])?["shape"] as? [Int] }
        }
        // From an ONNX export (folded BNs restored) and from Keras (another naming altogether).
        for source in ["tv-tiny-legacy-opset17.onnx", "keras3-tiny.keras"] {
            try Self.convert(Fixtures.path(source), "\(source).safetensors", in: folder)
            let written = try header(folder.appendingPathComponent("\(source).safetensors").path)
            #expect(written == (try header(Fixtures.path("tv-tiny.safetensors"))), "\(source)")
            #expect(written.count == 97)
        }
    }

    /// The head DenseKit records beside weights is checked like any other part of a file from a stranger.
    @Test func aDamagedHeadRecordIsNamed() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = Fixtures.path("tv-tiny-sigmoid14-legacy-opset17.onnx")
        try Self.convert(source, "m.safetensors", in: folder)
        try Self.convert(source, "m.h5", in: folder)
        let written = try Data(contentsOf: folder.appendingPathComponent("m.safetensors"))
        let cases: [(String, String)] = [
            (
                #"{"pool":"average","activations":["sigmoid","relu"]}"#,
                "classifier: expected 2 dense layers (as its head description says), found 1"
            ),
            (
                #"{"pool":"average","activations":["swish"]}"#,
                """
                expected a head description {\"pool\": \"average\", \"max\" or null, \"activations\": [...]}, \
                found activation 'swish'
                """
            ),
            ("nonsense", "__metadata__ 'densekit.head': expected a head description in JSON, found 'nonsense'"),
        ]
        for (i, (record, message)) in cases.enumerated() {
            let path = try Fixtures.write(
                try SafetensorsEditing.withHeader(written) { header in
                    var metadata = header["__metadata__"] as? [String: String] ?? [:]
                    metadata["densekit.head"] = record
                    header["__metadata__"] = metadata
                }, as: "bad\(i).safetensors", in: folder)
            let outcome = try densekit(["inspect", path])
            #expect(
                outcome.status == 2 && outcome.stderr.hasPrefix("error: \(path): ") && outcome.stderr.contains(message),
                "\(outcome.stderr)")
            #expect(outcome.stderr.split(separator: "\n").count == 1)
        }
        let h5 = folder.appendingPathComponent("bad.h5").path
        try HDF5Editing.editedCopy(folder.appendingPathComponent("m.h5").path, to: h5) { file in
            try HDF5Editing.setStrings(file, "/", "densekit", [#"{"head":{"pool":"max","activations":[]}}"#])
        }
        let outcome = try densekit(["inspect", h5])
        #expect(
            outcome.status == 2
                && outcome.stderr.contains(
                    "dense layers: expected 0 dense layers (as its head description says), found 1"),
            "\(outcome.stderr)")
    }
}
