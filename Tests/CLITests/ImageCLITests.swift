import DenseKit
import DenseKitFormats
import DenseKitImages
import Foundation
import TestSupport
import Testing

/// Images end to end: the presets against torchvision's transforms, Keras's load_img +
/// preprocess_input and the Caffe pipeline (computed by those libraries at test time) on real
/// photographs and their variants; run and diff over images and folders; every bad image one line.
@Suite(.serialized) struct ImageCLITests {
    static let std: [Float] = [0.229, 0.224, 0.225]

    /// PIL itself is the odd one out here: it opens a 16-bit gray PNG as mode I;16 and its RGB
    /// conversion clips each sample to 255 (almost the whole image white); DenseKit takes the high
    /// byte, as PIL does for 16-bit RGB. Checked against the high byte instead, below.
    static let pilIsOdd: Set<String> = ["camera-gray16.png"]

    /// Within 1.5/255 of the pixel scale: |a - b|, undone to 8-bit units (x std x 255, x 1 for caffe, / 0.017
    /// for caffe-zoo).
    @Test(arguments: ["torchvision", "keras-densenet", "caffe", "caffe-zoo"])
    func presetsMatchTheFrameworks(_ preset: String) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let files = try ImageFixtures.all()
        let out = folder.appendingPathComponent("x.npy").path
        let outcome = try densekit([
            "preprocess", try ImageFixtures.photos(), try ImageFixtures.variants(), "-o", out, "--preset", preset,
            "--json",
        ])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let rows = try #require(try outcome.json()["files"] as? [[String: Any]]).compactMap { $0["file"] as? String }
        #expect(
            rows.map { URL(fileURLWithPath: $0).lastPathComponent }
                == files.map { URL(fileURLWithPath: $0).lastPathComponent })
        #expect(files.count >= 20)
        let ours = try NPY.read(path: out)
        let theirs = try NPY.read(path: ImageFixtures.reference(preset, size: 224, files: files, in: folder).path)
        #expect(
            ours.shape == theirs.shape
                && ours.shape
                    == (preset == "keras-densenet" ? [files.count, 224, 224, 3] : [files.count, 3, 224, 224])
        )
        let per = 3 * 224 * 224
        for (i, file) in files.enumerated() where !Self.pilIsOdd.contains(URL(fileURLWithPath: file).lastPathComponent)
        {
            var worst: Float = 0
            for j in 0..<per {
                let channel = preset == "keras-densenet" ? j % 3 : j / (224 * 224)
                let scale: Float =
                    preset == "caffe" ? 1 : preset == "caffe-zoo" ? 1 / 0.017 : Self.std[channel] * 255
                worst = max(worst, abs(ours.values[i * per + j] - theirs.values[i * per + j]) * scale)
            }
            #expect(worst <= 1.5, "\(preset) on \(file): \(worst) gray levels")
        }
    }

    /// The image PIL reads differently: DenseKit's values are those of the 16-bit samples' high byte,
    /// the same as preprocessing the 8-bit original (make_image_fixtures.py wrote value * 256 + 128).
    @Test func sixteenBitGrayUsesTheHighByte() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let photoVariants = try ImageFixtures.variants()
        let pathA = folder.appendingPathComponent("a.npy").path
        let pathB = folder.appendingPathComponent("b.npy").path
        #expect(
            try densekit(["preprocess", photoVariants + "/camera-gray16.png", "-o", pathA, "--preset", "torchvision"])
                .status == 0)
        #expect(
            try densekit(["preprocess", photoVariants + "/camera-gray.png", "-o", pathB, "--preset", "torchvision"])
                .status == 0)
        #expect(try NPY.read(path: pathA).values == NPY.read(path: pathB).values)
    }

    /// `run --images` runs what `preprocess` writes, and prints the top classes of each image.
    @Test func runTakesImagesAndFolders() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let model = Fixtures.path("tv-tiny-legacy-opset17.onnx")
        let photos = try ImageFixtures.photos()
        let inputPath = folder.appendingPathComponent("x.npy").path
        let y1 = folder.appendingPathComponent("y1.npy").path
        let y2 = folder.appendingPathComponent("y2.npy").path
        #expect(
            try densekit(["preprocess", photos, "-o", inputPath, "--preset", "torchvision", "--size", "64"]).status == 0
        )
        #expect(try densekit(["run", model, "--input", inputPath, "--output", y1]).status == 0)
        let labels = folder.appendingPathComponent("labels.txt").path
        try (0..<10).map { "class \($0)" }.joined(separator: "\n").write(
            toFile: labels, atomically: true, encoding: .utf8)
        let outcome = try densekit([
            "run", model, "--images", photos, "--preset", "torchvision", "--size", "64", "--top", "2", "--labels",
            labels,
            "--output", y2, "--batch", "3", "--json",
        ])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: y1)) == Data(contentsOf: URL(fileURLWithPath: y2)))
        let loaded = try NPY.read(path: y1)
        let images = try #require(try outcome.json()["images"] as? [[String: Any]])
        #expect(images.count == loaded.shape[0])
        for (i, image) in images.enumerated() {
            let scores = Array(loaded.values[(i * 10)..<((i + 1) * 10)])
            let best = scores.indices.max { scores[$0] < scores[$1] }!
            let top = try #require(image["top"] as? [[String: Any]])
            #expect(top.count == 2 && top[0]["class"] as? Int == best && top[0]["label"] as? String == "class \(best)")
        }
        // A 1000-class model gets ImageNet's names.
        if let full = Fixtures.full {
            let textRun = try densekit([
                "run", "\(full)/densenet121-legacy-opset17.onnx", "--images", photos + "/astronaut.png", "--preset",
                "torchvision", "--top", "1",
            ])
            #expect(
                textRun.status == 0 && textRun.stdout.hasPrefix(photos + "/astronaut.png: ")
                    && textRun.stdout.contains(" ("),
                "\(textRun.stdout)")
            let index = Int(textRun.stdout.split(separator: "(").last?.split(separator: ")").first ?? "") ?? -1
            #expect(textRun.stdout.contains(ImageNetClasses.names[max(index, 0)]))
        }
    }

    /// The same model in two formats agrees on every image; a copy with one tampered layer is blamed on it.
    @Test func datasetDiffReportsPerImageAndBlamesTheLayer() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let onnx = Fixtures.path("tv-tiny-legacy-opset17.onnx")
        let st = Fixtures.path("tv-tiny.safetensors")
        let dirs = [try ImageFixtures.photos(), try ImageFixtures.variants()]
        let csv = folder.appendingPathComponent("d.csv").path
        let report = folder.appendingPathComponent("d.html").path
        let same = try densekit(
            ["diff", onnx, st, "--images"] + dirs + [
                "--preset", "torchvision", "--size", "64", "--batch", "4",
                "--csv", csv, "--report", report, "--json",
            ])
        #expect(same.status == 0, "\(same.stderr)")
        let parsed = try same.json()
        let images = try #require(parsed["images"] as? [[String: Any]])
        let files = try ImageFixtures.all()
        #expect(images.compactMap { $0["file"] as? String } == files)
        #expect(images.allSatisfy { $0["agrees"] as? Bool == true && $0["firstDivergence"] is NSNull })
        let totals = try #require(parsed["totals"] as? [String: Any])
        #expect(
            totals["images"] as? Int == files.count && totals["top1Agreement"] as? Double == 1
                && (totals["flips"] as? [String])?.isEmpty == true)
        let table = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
        #expect(
            table.count == files.count + 1
                && table[0] == "file,top1A,top1B,agrees,top5Agrees,maxAbs,maxRel,cosine,firstDivergence")
        #expect(try String(contentsOfFile: report, encoding: .utf8).contains("<h2>Images (\(files.count))</h2>"))

        // One dense layer's conv scaled by 1.5 in the safetensors copy.
        let tampered = try Fixtures.write(
            try SafetensorsEditing.rewritten("tv-tiny.safetensors") { entries in
                let key = "features.denseblock2.denselayer1.conv2.weight"
                var entry = entries[key]!
                let floats = entry.bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }.map { $0 * 1.5 }
                entry.bytes = floats.withUnsafeBufferPointer { Data(buffer: $0) }
                entries[key] = entry
            }, as: "tampered.safetensors", in: folder)
        let bad = try densekit(
            ["diff", onnx, tampered, "--images"] + dirs + ["--preset", "torchvision", "--size", "64", "--json"])
        #expect(bad.status == 1, "\(bad.stderr)")
        let pathB = try bad.json()
        let divergences = try #require((pathB["totals"] as? [String: Any])?["firstDivergences"] as? [[String: Any]])
        #expect(
            divergences.count == 1 && divergences[0]["layer"] as? String == "block2.layer1"
                && divergences[0]["images"] as? Int == files.count)
        #expect((pathB["firstDivergence"] as? [String: Any])?["name"] as? String == "block2.layer1")
        let text = try densekit([
            "diff", onnx, tampered, "--images", dirs[0], "--preset", "torchvision", "--size", "64",
        ])
        #expect(
            text.stdout.contains("first divergent layer, counted over images: block2.layer1 on 7"), "\(text.stdout)")
    }

    /// The decoder's refusals are values: the case says what kind, its fields what was found.
    @Test func decodingErrorsAreValues() throws {
        let photos = try ImageFixtures.photos()
        let png = try Data(contentsOf: URL(fileURLWithPath: photos + "/astronaut.png"))
        #expect(throws: ImageError.notAnImage(firstBytes: "")) { try ImageDecoder.decode(Data()) }
        #expect(throws: ImageError.notAnImage(firstBytes: "74 68 69 73")) {
            try ImageDecoder.decode(Data("this is a text file\n".utf8))
        }
        #expect(throws: ImageError.tooManyPixels(width: 512, height: 512, limit: 1000)) {
            try ImageDecoder.decode(png, maximumPixels: 1000)
        }
        var badCRC = png
        badCRC[45] ^= 0xFF  // inside the iCCP chunk that follows IHDR (bytes 33 on)
        #expect(throws: ImageError.badChunk("'iCCP'", problem: "has a bad CRC")) { try ImageDecoder.decode(badCRC) }
        let small = Preprocessing(
            resize: .shorterSide(4), filter: .bilinear, crop: 8, divisor: 255, mean: [0, 0, 0], std: [1, 1, 1],
            bgr: false, layout: .nchw)
        let huge = Preprocessing(
            resize: .exact(width: 20_000, height: 20_000), filter: .bilinear, crop: nil, divisor: 255,
            mean: [0, 0, 0], std: [1, 1, 1], bgr: false, layout: .nchw)
        #expect(
            throws: ImageError.resizePastLimit(
                fromWidth: 512, fromHeight: 512, toWidth: 20_000, toHeight: 20_000, limit: ImageDecoder.maximumPixels)
        ) { try huge.apply(try ImageDecoder.decode(png)) }
        #expect(throws: ImageError.smallerThanCrop(width: 4, height: 4, crop: 8)) {
            try small.apply(try ImageDecoder.decode(png))
        }
    }

    /// Truncated, a bad CRC, not an image, empty, and a header claiming 100000x100000 pixels: each
    /// exit 2 with one line naming the file; in a folder, --skip-bad goes on and lists them.
    @Test func badImagesAreOneLineEach() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = try ImageFixtures.photos()
        let png = try Data(contentsOf: URL(fileURLWithPath: photos + "/astronaut.png"))
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: photos + "/rocket.jpg"))
        var badCRC = png
        // The last IDAT's data ends with the zlib stream's Adler-32, which no longer matches (Pillow refuses it).
        badCRC[badCRC.count - 20] ^= 0xFF
        var huge = png  // IHDR width and height at bytes 16..23, its CRC at 29..32
        for (offset, value) in [(16, UInt32(100_000)), (20, UInt32(100_000))] {
            withUnsafeBytes(of: value.bigEndian) { huge.replaceSubrange(offset..<(offset + 4), with: $0) }
        }
        withUnsafeBytes(of: crc32(huge[12..<29]).bigEndian) { huge.replaceSubrange(29..<33, with: $0) }
        var hugeJPEG = jpeg
        if let sof = (2..<(jpeg.count - 9)).first(where: {
            jpeg[$0] == 0xFF && (jpeg[$0 + 1] == 0xC0 || jpeg[$0 + 1] == 0xC2)
        }) {
            // 20000 x 20000 (libjpeg's own limit is 65500)
            hugeJPEG.replaceSubrange((sof + 5)..<(sof + 9), with: [0x4E, 0x20, 0x4E, 0x20])
        }
        let cases: [(String, Data, String)] = [
            ("truncated.jpg", jpeg.prefix(jpeg.count / 2), "truncated or corrupt JPEG data"),
            ("truncated.png", png.prefix(png.count / 2), "truncated or corrupt PNG data"),
            ("bad-crc.png", badCRC, "truncated or corrupt PNG data"),
            (
                "not-an-image.jpg", Data("this is a text file\n".utf8),
                "not a JPEG or PNG image (the file starts with 74 68 69 73)"
            ),
            ("empty.png", Data(), "empty file, not an image"),
            ("huge.png", huge, "the header claims 100000x100000 pixels, more than the 89478485-pixel limit"),
            ("huge.jpg", hugeJPEG, "the header claims 20000x20000 pixels, more than the 89478485-pixel limit"),
        ]
        let bad = folder.appendingPathComponent("bad")
        try FileManager.default.createDirectory(at: bad, withIntermediateDirectories: true)
        for (name, data, message) in cases {
            let path = try Fixtures.write(data, as: name, in: bad)
            let outcome = try densekit([
                "preprocess", path, "-o", folder.appendingPathComponent("x.npy").path, "--preset", "torchvision",
            ])
            #expect(outcome.status == 2, "\(name): \(outcome.stderr)")
            #expect(outcome.stderr.hasPrefix("error: \(path): \(message)"), "\(outcome.stderr)")
            #expect(outcome.stderr.split(separator: "\n").count == 1)
        }
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("x.npy").path))
        // A folder with good and bad images: refused at the first bad one, or, with --skip-bad, every bad one listed.
        try FileManager.default.copyItem(
            atPath: photos + "/astronaut.png", toPath: bad.appendingPathComponent("good.png").path)
        let inputPath = folder.appendingPathComponent("x.npy").path
        let stop = try densekit(["preprocess", bad.path, "-o", inputPath, "--preset", "torchvision"])
        #expect(stop.status == 2 && stop.stderr.hasPrefix("error: \(bad.path)/bad-crc.png: "), "\(stop.stderr)")
        let go = try densekit([
            "preprocess", bad.path, "-o", inputPath, "--preset", "torchvision", "--skip-bad", "--json",
        ])
        #expect(go.status == 0, "\(go.stderr)")
        let parsed = try go.json()
        #expect((parsed["files"] as? [[String: Any]])?.compactMap { $0["file"] as? String } == [bad.path + "/good.png"])
        #expect((parsed["skipped"] as? [[String: Any]])?.count == cases.count)
        #expect(try NPY.read(path: inputPath).shape == [1, 3, 224, 224])
        let run = try densekit([
            "run", Fixtures.path("tv-tiny-legacy-opset17.onnx"), "--images", bad.path, "--preset", "torchvision",
            "--size", "64", "--skip-bad",
        ])
        #expect(
            run.status == 0
                && run.stderr.split(separator: "\n").filter { $0.hasPrefix("skipped ") }.count == cases.count,
            "\(run.stderr)")
    }

    /// End to end on photographs: `run --images --preset torchvision` on a full-size DenseNet-169
    /// checkpoint gives what torch gives on torchvision's own transforms of the same files.
    @Test func runOnImagesMatchesTorchOnTorchvisionsPipeline() throws {
        guard let full = Fixtures.full else {
            print("fixtures/full absent (make fixtures-full): the full-size image run was not checked")
            return
        }
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = try ImageFixtures.photos()
        let model = "\(full)/densenet169.safetensors"
        let files = try FileManager.default.contentsOfDirectory(atPath: photos).sorted().map { photos + "/" + $0 }
        let ours = folder.appendingPathComponent("ours.npy").path
        let theirs = folder.appendingPathComponent("torch.npy").path
        let outcome = try densekit(["run", model, "--images", photos, "--preset", "torchvision", "-o", ours])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        let inputPath = try ImageFixtures.reference("torchvision", size: 224, files: files, in: folder)
        try Frameworks.run(
            .torch,
            [
                Frameworks.Case(
                    file: model, input: inputPath.path, layout: "nchw", output: theirs,
                    model: [
                        "application": "DenseNet169", "size": 224, "pool": "average",
                        "dense": [[1000, "linear"] as [Any]],
                    ])
            ], in: folder)
        let pathA = try NPY.read(path: ours)
        let pathB = try NPY.read(path: theirs)
        #expect(pathA.shape == [files.count, 1000] && pathB.shape == pathA.shape)
        #expect(relativeError(pathA.values, pathB.values) <= 1e-4)
    }

    /// On a terminal (a pseudo-terminal from util-linux's `script`), a dataset diff shows a progress bar
    /// on stderr, one update per batch; piped, it shows none (the other tests read stderr empty of it).
    @Test func aDatasetDiffShowsProgressOnATerminal() throws {
        let args = [
            "diff", Fixtures.path("tv-tiny.pth"), Fixtures.path("tv-tiny-legacy-opset17.onnx"), "--images",
            Fixtures.path("demo-images"),
            "--preset", "torchvision", "--size", "64", "--batch", "1",
        ]
        let command = ([try densekitBinary().path] + args).map { "'\($0)'" }.joined(separator: " ")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        process.arguments = ["-qec", command, "/dev/null"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")
        for i in 1...3 { #expect(text.contains("diff: [") && text.contains("] \(i)/3 images"), "\(text)") }
        let piped = try densekit(args)
        #expect(piped.status == 0 && !piped.stderr.contains("diff: ["))
    }

    /// The steps compose: caffe's pipeline changed step by step into torchvision's gives torchvision's values.
    @Test func customStepsCompose() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let photos = try ImageFixtures.photos()
        let pathA = folder.appendingPathComponent("a.npy").path
        let pathB = folder.appendingPathComponent("b.npy").path
        #expect(
            try densekit(["preprocess", photos, "-o", pathA, "--preset", "torchvision", "--size", "64"]).status == 0)
        let outcome = try densekit([
            "preprocess", photos, "-o", pathB, "--preset", "caffe", "--resize", "73", "--crop", "64", "--rgb",
            "--divisor",
            "255",
            "--mean", "0.485,0.456,0.406", "--std", "0.229,0.224,0.225",
        ])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect(try NPY.read(path: pathA).values == NPY.read(path: pathB).values)
        #expect(
            outcome.stdout.contains(
                """
                shorter side to 73 (bilinear), centre crop 64, /255, mean (0.485, 0.456, 0.406), std (0.229, \
                0.224, 0.225), RGB
                """
            ))
    }

    /// `convert` validates on images too (every command that takes --input takes --images).
    @Test func convertValidatesOnImages() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let outcome = try densekit([
            "convert", Fixtures.path("keras3-tiny.keras"), "-o", folder.appendingPathComponent("m.onnx").path,
            "--accept-deviations",
            "--images", try ImageFixtures.photos(), "--preset", "keras-densenet", "--size", "64", "--json",
        ])
        #expect(outcome.status == 0, "\(outcome.stderr)")
        #expect((try outcome.json()["validation"] as? [String: Any])?["bitIdentical"] as? Bool == true)
    }

    /// Usage mistakes are exit 2 with one line.
    @Test func imageUsageErrors() throws {
        let photos = try ImageFixtures.photos()
        let model = Fixtures.path("tv-tiny-legacy-opset17.onnx")
        for (args, message) in [
            (["run", model, "--images", photos], "--preset is required with images"),
            // Options are checked before any model is read: these models do not exist.
            (["diff", "/nonexistent/a.onnx", "/nonexistent/b.onnx", "--images", photos], "--preset is required"),
            (
                ["convert", "/nonexistent/a.onnx", "-o", "/tmp/never.onnx", "--images", photos, "--preset", "tv"],
                "The value 'tv' is invalid for '--preset <preset>'"
            ),
            (
                ["run", "/nonexistent/a.onnx", "--images", photos, "--preset", "caffe", "--filter", "cubic"],
                "The value 'cubic' is invalid for '--filter <filter>'"
            ),
            (
                ["run", "/nonexistent/a.onnx", "--images", photos, "--preset", "caffe", "--resize", "0x0"],
                "--resize takes N, WxH (each from 1 to 16384) or none, not '0x0'"
            ),
            (
                ["run", model, "--images", photos, "--preset", "imagenet"],
                "The value 'imagenet' is invalid for '--preset <preset>'. Please provide one of 'torchvision', "
            ),
            (
                ["run", model, "--images", photos + "/nothing-here", "--preset", "torchvision"],
                "error: \(photos)/nothing-here: no such file or folder"
            ),
            (
                ["diff", model, model, "--images", photos, "--input", "x.npy", "--preset", "caffe"],
                "give either --input X.npy or --images"
            ),
            (
                ["preprocess", photos, "-o", "/tmp/x.npy", "--preset", "torchvision", "--mean", "1,2"],
                "--mean takes three comma-separated numbers"
            ),
        ] {
            let outcome = try densekit(args)
            #expect(
                outcome.status == 2 && outcome.stderr.contains(message)
                    && outcome.stderr.split(separator: "\n").count == 1,
                "\(args): \(outcome.stderr)")
        }
    }
}
