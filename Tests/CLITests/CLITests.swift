import DenseKit
import DenseKitFormats
import Foundation
import TestSupport
import Testing

/// An unusable input: exit 2, nothing on stdout, exactly one line `error: <file>: <what>` (`error: <what>`
/// without a file), mentioning `mentions` when given.
func expectUsageError(
    _ args: [String], file: String?, mentions: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
) throws {
    let outcome = try densekit(args)
    #expect(outcome.status == 2, "\(args): \(outcome.stderr)", sourceLocation: sourceLocation)
    #expect(outcome.stdout.isEmpty, "\(args)", sourceLocation: sourceLocation)
    let lines = outcome.stderr.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
    #expect(lines.count == 1, "\(args): \(outcome.stderr)", sourceLocation: sourceLocation)
    let prefix = file.map { "error: \($0): " } ?? "error: "
    #expect(outcome.stderr.hasPrefix(prefix), "\(args): \(outcome.stderr)", sourceLocation: sourceLocation)
    if let mentions { #expect(outcome.stderr.contains(mentions), "\(outcome.stderr)", sourceLocation: sourceLocation) }
}

/// `densekit` end to end, as scripts drive it: output, JSON keys and exit codes of the contract.
@Suite struct CLITests {
    let tiny = Fixtures.path("tv-tiny-legacy-opset17.onnx")

    @Test func inspectShowsTheStructure() throws {
        let outcome = try densekit(["inspect", tiny])
        #expect(outcome.status == 0)
        #expect(outcome.stdout.contains("onnx (pytorch 2.15.0, opset 17)"))
        #expect(outcome.stdout.contains("conv 7x7/2 3->8, BN (folded), ReLU, max pool 3x3/2"))
        #expect(outcome.stdout.contains("linear 16 -> 10, logits"))
        let json = try densekit(["inspect", tiny, "--json"]).json()
        #expect(json["format"] as? String == "onnx")
        #expect(json["opset"] as? Int == 17)
        #expect((json["blocks"] as? [[String: Any]])?.map { $0["layers"] as? Int } == [2, 2, 2])
        #expect((json["input"] as? [String: Any])?["layout"] as? String == "nchw")
        #expect(json["tensors"] as? Int == 60)
    }

    @Test func verifyExitsOneWithDeviationsForATinyNet() throws {
        let outcome = try densekit(["verify", tiny])
        #expect(outcome.status == 1)
        #expect(outcome.stdout.contains("does not match closest architecture densenet121"))
        #expect(outcome.stdout.contains("all 6 dense layers  growth rate       32        4"))
        let json = try densekit(["verify", tiny, "--json"])
        #expect(json.status == 1)
        let object = try json.json()
        #expect(object["matches"] as? Bool == false)
        #expect(object["architecture"] is NSNull)
        #expect(object["closest"] as? String == "densenet121")
        #expect(object["growthRate"] as? Int == 4)
        #expect(object["blocks"] as? [Int] == [2, 2, 2])
        #expect(object["compression"] as? Double == 0.5)
        #expect(object["bottleneck"] as? Bool == true)
        #expect(object["classes"] as? Int == 10)
        let parameters = try #require(object["parameters"] as? [String: Int])
        let meta = try Fixtures.meta(Fixtures.path("tv-tiny-legacy-opset17.meta.json"))
        #expect(
            parameters["trainable"] == meta.trainable
                && parameters["withBatchNormStatistics"] == meta.withBatchNormStatistics)
        let deviations = try #require(object["deviations"] as? [[String: String]])
        #expect(deviations.contains { $0 == ["layer": "block1", "check": "layers", "expected": "6", "found": "2"] })
    }

    @Test(.enabled(if: Fixtures.full != nil, "full-size fixtures not built"))
    func verifyExitsZeroForDenseNet121() throws {
        let folder = try #require(Fixtures.full)
        for file in ["densenet121-legacy-opset17.onnx", "keras2-densenet121-weights.h5", "keras3-densenet121.keras"] {
            let outcome = try densekit(["verify", folder + "/" + file, "--arch", "densenet121", "--json"])
            #expect(outcome.status == 0, "\(file)")
            let object = try outcome.json()
            #expect(object["architecture"] as? String == "densenet121")
            #expect((object["parameters"] as? [String: Int])?["trainable"] == 7_978_856)
            #expect((object["parameters"] as? [String: Int])?["withBatchNormStatistics"] == 8_062_504)
        }
    }

    @Test func runWritesTheReferenceOutput() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("y.npy").path
        let outcome = try densekit([
            "run", tiny, "--input", Fixtures.path("input-64.npy"), "--output", out, "--threads", "1",
            "--repeat", "3", "--json",
        ])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let object = try outcome.json()
        #expect(object["outputShape"] as? [Int] == [2, 10])
        #expect(object["threads"] as? Int == 1)
        #expect((object["runMs"] as? [String: Double])?["median"] != nil)
        #expect(object["loadMs"] is Double)
        let loaded = try NPY.read(path: out)
        let want = try NPY.read(path: Fixtures.path("tv-tiny-legacy-opset17.out.npy"))
        #expect(loaded.shape == [2, 10])
        #expect(relativeError(loaded.values, want.values) <= 1e-4)
    }

    /// A model path that is a FIFO, a device or a directory, and an ONNX external-data file that is a
    /// FIFO, are refused before anything reads them (a FIFO used to block every command forever).
    @Test func onlyRegularFilesAreRead() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("model.onnx").path
        #expect(mkfifo(fifo, 0o600) == 0)
        for (path, what) in [(fifo, "a FIFO"), ("/dev/zero", "a character device"), (folder.path, "a directory")] {
            let outcome = try densekit(["inspect", path], killAfter: 30)
            #expect(
                outcome.stderr == "error: \(path): is \(what), not a regular file\n" && outcome.status == 2,
                "\(outcome.stderr)")
        }
        let model = folder.appendingPathComponent("tv-tiny-dynamo-opset18.onnx").path
        try FileManager.default.copyItem(atPath: Fixtures.path("tv-tiny-dynamo-opset18.onnx"), toPath: model)
        #expect(mkfifo(model + ".data", 0o600) == 0)
        let outcome = try densekit(["inspect", model], killAfter: 30)
        #expect(outcome.status == 2 && outcome.stderr.split(separator: "\n").count == 1, "\(outcome.stderr)")
        #expect(outcome.stderr.contains("cannot open external data file 'tv-tiny-dynamo-opset18.onnx.data': is a FIFO"))
    }

    /// A file name with a newline and a terminal escape in it stays one line of error, the characters
    /// escaped.
    @Test func fileNamesCannotSplitOrColourTheErrorLine() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let name = folder.appendingPathComponent("bad\nerror: forged\u{1B}[31m.onnx").path
        let outcome = try densekit(["inspect", name])
        let shown = folder.path + "/bad\\nerror: forged\\x1B[31m.onnx"
        #expect(outcome.status == 2 && outcome.stderr == "error: \(shown): no such file\n", "\(outcome.stderr)")
    }

    /// `--threads` above the cores this process may use runs on those cores (more workers would only
    /// wait for one another), and says so in `--json`.
    @Test func threadsAreAtMostTheCores() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let out = folder.appendingPathComponent("y.npy").path
        let outcome = try densekit([
            "run", tiny, "--input", Fixtures.path("input-64.npy"), "--output", out, "--threads", "256", "--json",
        ])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(try outcome.json()["threads"] as? Int == ProcessInfo.processInfo.activeProcessorCount)
    }

    /// `--fast` (Winograd, the default) and `--exact` both give the onnxruntime reference; they are
    /// named in `--json`, and asking for both is a usage error.
    @Test func runTakesTheConvolutionMode() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // The CIFAR net's blocks are 32 and 16 px: F(4x4), then the direct convolution.
        let model = Fixtures.path("cifar-bc-tiny-legacy-opset17.onnx")
        let input = Fixtures.path("input-32.npy")
        let want = try NPY.read(path: Fixtures.path("cifar-bc-tiny-legacy-opset17.out.npy"))
        var outputs: [String: [Float]] = [:]
        for flags in [[], ["--fast"], ["--exact"]] {
            let out = folder.appendingPathComponent("y\(flags.count)\(flags.first ?? "").npy").path
            let outcome = try densekit(["run", model, "--input", input, "-o", out, "--json"] + flags)
            #expect(outcome.status == 0, "\(outcome.stderr)")
            #expect(try outcome.json()["convolutions"] as? String == (flags.first == "--exact" ? "exact" : "fast"))
            let loaded = try NPY.read(path: out).values
            #expect(relativeError(loaded, want.values) <= 1e-4, "\(flags)")
            outputs[flags.first ?? "default"] = loaded
        }
        #expect(outputs["default"] == outputs["--fast"] && outputs["--fast"] != outputs["--exact"])
        try expectUsageError(
            ["run", model, "--input", input, "-o", folder.appendingPathComponent("z.npy").path, "--fast", "--exact"],
            file: nil, mentions: "--fast")
    }

    @Test func runTakesNHWCInputForAnNCHWModel() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        // The Keras fixtures' NHWC input through the tf2onnx model (NHWC) and through --layout.
        let out = folder.appendingPathComponent("y.npy").path
        let outcome = try densekit([
            "run", Fixtures.path("keras2-tiny-tf2onnx.onnx"), "--input", Fixtures.path("input-64-nhwc.npy"),
            "--output", out, "--layout", "nhwc",
        ])
        #expect(outcome.status == 0)
        #expect(
            relativeError(
                try NPY.read(path: out).values, try NPY.read(path: Fixtures.path("keras2-tiny-tf2onnx.out.npy")).values)
                <= 1e-4)
    }

    @Test func unusableInputsExitTwoWithOneLine() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let garbage = folder.appendingPathComponent("garbage.onnx").path
        try Data((0..<999).map { UInt8(($0 * 7919) % 251) }).write(to: URL(fileURLWithPath: garbage))
        let truncatedH5 = folder.appendingPathComponent("cut.h5").path
        try Fixtures.data("keras3-tiny.h5").prefix(5000).write(to: URL(fileURLWithPath: truncatedH5))
        let missing = folder.appendingPathComponent("missing.onnx").path
        let out = folder.appendingPathComponent("out.npy").path

        for command in ["inspect", "verify"] {
            try expectUsageError([command, missing], file: missing, mentions: "no such file")
            try expectUsageError([command, garbage], file: garbage, mentions: "not an ONNX model")
            try expectUsageError([command, truncatedH5], file: truncatedH5, mentions: "HDF5")
        }
        try expectUsageError(
            ["run", garbage, "--input", Fixtures.path("input-64.npy"), "--output", out], file: garbage,
            mentions: "not an ONNX model")
        try expectUsageError(
            ["run", tiny, "--input", Fixtures.path("input-32.npy"), "--output", out],
            file: Fixtures.path("input-32.npy"),
            mentions: "input shape [2, 3, 32, 32] does not fit the model's input [N, 3, 64, 64] (NCHW)")
        try expectUsageError(["run", tiny, "--input", tiny, "--output", out], file: tiny, mentions: "bad magic")
        try expectUsageError(
            ["run", tiny, "--input", Fixtures.path("input-64.npy"), "--output", "/nonexistent-dir/y.npy"],
            file: "/nonexistent-dir/y.npy", mentions: "cannot create a file")
        try expectUsageError(
            ["verify", tiny, "--arch", "densenet122"], file: nil,
            mentions: "'densenet122' is invalid for '--arch <arch>'. Please provide one of the following: densenet121, "
        )
        try expectUsageError(
            ["run", tiny, "--input", Fixtures.path("input-64.npy"), "--output", out, "--layout", "nchwx"], file: nil,
            mentions: "--layout")
        try expectUsageError(["inspect", tiny, "--bogus"], file: nil, mentions: "--bogus")
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == ["cut.h5", "garbage.onnx"])
    }

    @Test func helpExitsZero() throws {
        let outcome = try densekit(["--help"])
        #expect(outcome.status == 0)
        #expect(
            outcome.stdout.contains("inspect") && outcome.stdout.contains("verify") && outcome.stdout.contains("run"))
    }
}

/// Inputs the fuzzers found (fixtures/regressions/, with how each was found in README).
@Suite struct FuzzRegressionTests {
    /// libhdf5 1.10 loops forever reading a variable-length attribute over a damaged global heap;
    /// the import deadline turns that into exit 2 with one line.
    @Test func hdf5GlobalHeapHangEndsWithAnError() throws {
        let file = Fixtures.path("regressions/hdf5-global-heap-hang.h5")
        let outcome = try densekit(["inspect", file], environment: ["DENSEKIT_IMPORT_DEADLINE": "3"])
        #expect(outcome.status == 2)
        #expect(outcome.stderr == "error: \(file): import did not finish within 3 s (the file is probably corrupt)\n")
    }

    /// libhdf5 1.10 allocates the 4 GiB a damaged variable-length attribute claims: the isolated
    /// reader's address-space cap makes that allocation fail inside libhdf5 (exit 2, one line)
    /// instead of the child growing to 8 GB. (Under AddressSanitizer there is no cap.)
    @Test func hdf5HugeAllocationFailsInsideTheCap() throws {
        let file = Fixtures.path("regressions/hdf5-vlen-4gib-allocation.h5")
        let outcome = try densekit(["inspect", file])
        #expect(
            outcome.status == 2 && outcome.stderr.hasPrefix("error: \(file): ")
                && outcome.stderr.split(separator: "\n").count == 1,
            "\(outcome.stderr)")
        if dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") == nil {
            #expect(
                outcome.stderr
                    == """
                    error: \(file): cannot read attribute 'layer_names' of 'model_weights' (HDF5: memory \
                    allocation failed for chunk)\n
                    """
            )
        }
    }

    /// A dataset whose storage size is reported near 2^64 once made DenseKit's own check overflow
    /// (a trap in the isolated reader, misreported as a libhdf5 crash): now one line about the dataset.
    @Test func hdf5HugeStorageSizeIsAnErrorNotATrap() throws {
        let file = Fixtures.path("regressions/hdf5-storage-size-overflow.h5")
        let outcome = try densekit(["inspect", file])
        #expect(outcome.status == 2 && outcome.stderr.split(separator: "\n").count == 1, "\(outcome.stderr)")
        #expect(
            outcome.stderr.hasPrefix("error: \(file): ") && !outcome.stderr.contains("crashed"), "\(outcome.stderr)")
    }

    /// libhdf5 1.10 overruns a buffer on a damaged global heap (a segfault): the isolated reader
    /// turns it into exit 2 with one line, for every command.
    @Test func hdf5CrashEndsWithAnError() throws {
        let file = Fixtures.path("regressions/hdf5-global-heap-overflow.h5")
        for command in [["inspect", file], ["verify", file], ["convert", file, "-o", "/tmp/never-written.dnk"]] {
            let outcome = try densekit(command)
            #expect(outcome.status == 2, "\(command)")
            // Signal 11 natively; under AddressSanitizer (make test-asan) the overrun is caught and aborts (6).
            #expect(
                outcome.stderr.hasPrefix("error: \(file): the HDF5 library crashed reading this file (signal "),
                "\(command)")
            #expect(
                outcome.stderr.hasSuffix("); it is corrupt\n") && outcome.stderr.split(separator: "\n").count == 1,
                "\(command)")
        }
        #expect(!FileManager.default.fileExists(atPath: "/tmp/never-written.dnk"))
    }
}
