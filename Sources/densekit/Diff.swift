import ArgumentParser
import DenseKit
import DenseKitExecute
import DenseKitFormats
import DenseKitGraph
import DenseKitImages
import Foundation

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run two copies of a model on one input and show where they diverge first, layer by layer.",
        discussion: """
            A layer is within tolerance when every |a - b| <= atol + rtol * max|b| over that layer \
            (defaults: atol \(Tolerance.defaultAbsolute), rtol \(Tolerance.defaultRelative), suited to float32 \
            through a deep net). Exit 0 within tolerance, 1 beyond it, 2 for an unusable file or two \
            models that are not the same architecture.
            """)

    @Argument(help: "The first model (the input's default layout is its own).") var a: String
    @Argument(help: "The second model, the reference side for relative errors.") var b: String
    @Option(help: "Input array (.npy).") var input: String?
    @Option(
        parsing: .upToNextOption,
        help: "Images instead of --input: files or folders (a dataset diff, streamed in batches).") var images:
        [String] = []
    @OptionGroup var preprocessing: PreprocessingOptions
    @Option(help: "Images per batch of a dataset diff.") var batch: Int = 16
    @Option(help: "Write the per-image table of a dataset diff as CSV.") var csv: String?
    @Flag(help: "Go on past images that cannot be read, and list them.") var skipBad = false
    @OptionGroup var execution: ExecutionOptions
    @Option(help: "Absolute tolerance.") var atol: Float = Tolerance.defaultAbsolute
    @Option(help: "Relative tolerance (to the layer's largest magnitude).") var rtol: Float = Tolerance.defaultRelative
    @Flag(help: "Print one JSON object on stdout.") var json = false
    @Option(help: "Write a self-contained HTML report with a chart of the error per layer.") var report: String?

    func validate() throws {
        guard atol >= 0, rtol >= 0, atol.isFinite, rtol.isFinite else {
            throw ValidationError("--atol and --rtol must be finite and >= 0.")
        }
        guard (input == nil) != images.isEmpty else {
            throw ValidationError("give either --input X.npy or --images DIR|FILE... --preset P.")
        }
        if !images.isEmpty { try preprocessing.requirePreset() }
        guard (1...1024).contains(batch) else { throw ValidationError("--batch must be between 1 and 1024.") }
        if csv != nil && images.isEmpty { throw ValidationError("--csv is for a dataset diff (--images).") }
    }

    func run() throws {
        let netA = try loadModel(a)
        let netB = try loadModel(b)
        let diff = try CommandFailure.about(b) {
            try ModelDiff(
                netA, netB, tolerance: Tolerance(absolute: atol, relative: rtol), threads: execution.threadCount,
                mode: execution.mode)
        }
        guard let input else { return try datasetDiff(diff, netA) }
        let array = try CommandFailure.about(input) { try NPY.read(path: input) }
        let layout = execution.inputLayout ?? netA.input.layout
        let x = try CommandFailure.about(input) { try ModelInput(array, layout: layout, for: netA) }
        _ = try CommandFailure.about(input) { try ModelInput(array, layout: layout, for: netB) }
        let result = try CommandFailure.about(a) {
            try diff.run(x.values, batch: x.batch, height: x.height, width: x.width)
        }
        if let report {
            try CommandFailure.about(report) {
                try AtomicFile.write(Data(DiffReport(result: result, a: a, b: b).html.utf8), to: report)
            }
        }
        if json {
            printJSON(jsonObject(result))
        } else {
            printText(result)
        }
        if !result.withinTolerance { throw ExitCode(1) }
    }

    private func metrics(_ m: ErrorMetrics) -> [String: Any] {
        ["maxAbs": Double(m.maxAbs), "maxRel": Double(m.maxRel), "cosine": Double(m.cosine), "nmse": Double(m.nmse)]
    }

    private func layerObject(_ l: ModelDiff.Layer) -> [String: Any] {
        var o = metrics(l.metrics)
        o["name"] = l.name
        o["withinTolerance"] = l.withinTolerance
        if let c = l.divergentChannels {
            o["divergentChannels"] = ["from": c.lowerBound, "to": c.upperBound]
            if let offset = l.blockChannelOffset {
                o["blockChannels"] = ["from": offset + c.lowerBound, "to": offset + c.upperBound]
            }
        }
        return o
    }

    private func jsonObject(_ r: ModelDiff.Result) -> [String: Any] {
        var output = metrics(r.output)
        output["top1Agreement"] = r.top1Agreement
        output["top5Agreement"] = r.top5Agreement
        output["samples"] = r.samples.map {
            ["top1A": $0.top1A, "top1B": $0.top1B, "top1Agrees": $0.top1Agrees, "top5Agrees": $0.top5Agrees]
        }
        return [
            "withinTolerance": r.withinTolerance,
            "tolerance": ["atol": Double(r.tolerance.absolute), "rtol": Double(r.tolerance.relative)],
            "output": output,
            "layers": r.layers.map(layerObject),
            "firstDivergence": r.firstDivergence.map(layerObject) ?? NSNull(),
        ]
    }

    private func printText(_ r: ModelDiff.Result) {
        let outputLine = String(
            format: "output max abs %.3g, max rel %.3g, cosine %.6f; top-1 agreement %.0f%%, top-5 %.0f%%",
            r.output.maxAbs, r.output.maxRel, r.output.cosine, r.top1Agreement * 100, r.top5Agreement * 100)
        if let first = r.firstDivergence {
            var location = ""
            if let c = first.divergentChannels {
                location = " (channels \(c.lowerBound)-\(c.upperBound) of its output"
                if let o = first.blockChannelOffset {
                    location += ", \(o + c.lowerBound)-\(o + c.upperBound) of the block's features"
                }
                location += ")"
            }
            print("\(a) and \(b) diverge first at \(first.name)\(location): \(outputLine)")
        } else {
            print("\(a) and \(b) agree within tolerance at every layer: \(outputLine)")
        }
        let pad = { (s: String, n: Int) in s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        print("  " + pad("layer", 16) + "   max abs    max rel     cosine")
        let first = r.firstDivergence?.name
        for l in r.layers {
            let marker = l.name == first ? ">" : l.withinTolerance ? " " : "!"
            print(
                "\(marker) " + pad(l.name, 16)
                    + String(format: " %10.2e %10.2e %10.6f", l.metrics.maxAbs, l.metrics.maxRel, l.metrics.cosine))
        }
    }

    // MARK: dataset diff

    private func datasetDiff(_ diff: ModelDiff, _ net: DenseNet) throws {
        let set = ImageSet(
            files: try imageFiles(images),
            preprocessing: try preprocessing.preprocessing(defaultSize: net.input.height), skipBad: skipBad)
        let report = try withProgress("diff", blaming: a) { bar in
            try DatasetDiff.run(diff, images: set, batchSize: batch) { bar.update($0, $1) }
        }
        for f in report.skipped { log("skipped \(f.file): \(f.description)") }
        if let csv {
            try CommandFailure.about(csv) { try AtomicFile.write(Data(csvTable(report).utf8), to: csv) }
        }
        if let path = self.report {
            try CommandFailure.about(path) {
                try AtomicFile.write(
                    Data(DiffReport(result: report.result, a: a, b: b, images: report.images).html.utf8), to: path)
            }
        }
        if json {
            var o = jsonObject(report.result)
            o["images"] = report.images.map(imageObject)
            o["totals"] =
                [
                    "images": report.images.count,
                    "top1Agreement": report.result.top1Agreement, "top5Agreement": report.result.top5Agreement,
                    "flips": report.flips.map(\.file),
                    "worst": report.worst(5).map { ["file": $0.file, "maxRel": Double($0.sample.output.maxRel)] },
                    "firstDivergences": report.firstDivergences.map { ["layer": $0.layer, "images": $0.images] },
                ] as [String: Any]
            o["skipped"] = report.skipped.map { ["file": $0.file, "error": $0.description] }
            printJSON(o)
        } else {
            printDataset(report)
            printText(report.result)
        }
        if !report.result.withinTolerance { throw ExitCode(1) }
    }

    private func imageObject(_ i: DatasetDiff.Image) -> [String: Any] {
        let s = i.sample
        return [
            "file": i.file, "top1A": s.top1A, "top1B": s.top1B, "agrees": s.top1Agrees, "top5Agrees": s.top5Agrees,
            "maxAbs": Double(s.output.maxAbs), "maxRel": Double(s.output.maxRel), "cosine": Double(s.output.cosine),
            "firstDivergence": s.firstDivergence ?? NSNull(),
        ]
    }

    private func csvTable(_ r: DatasetDiff.Report) -> String {
        func field(_ s: String) -> String {
            s.contains(where: { ",\"\n".contains($0) })
                ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        var out = "file,top1A,top1B,agrees,top5Agrees,maxAbs,maxRel,cosine,firstDivergence\n"
        for i in r.images {
            let s = i.sample
            out +=
                [
                    field(i.file), "\(s.top1A)", "\(s.top1B)", "\(s.top1Agrees)", "\(s.top5Agrees)",
                    "\(s.output.maxAbs)", "\(s.output.maxRel)",
                    "\(s.output.cosine)", s.firstDivergence ?? "",
                ].joined(separator: ",") + "\n"
        }
        return out
    }

    private func printDataset(_ r: DatasetDiff.Report) {
        let n = r.images.count
        let agree = r.images.filter(\.sample.top1Agrees).count
        print(
            String(
                format: "%@ and %@ over %d image%@: top-1 agreement %.1f%% (%d/%d), top-5 %.1f%%", a, b, n,
                n == 1 ? "" : "s",
                r.result.top1Agreement * 100, agree, n, r.result.top5Agreement * 100))
        let divergences = r.firstDivergences
        print(
            divergences.isEmpty
                ? "no layer is out of tolerance on any image"
                : "first divergent layer, counted over images: "
                    + divergences.map { "\($0.layer) on \($0.images)" }.joined(separator: ", "))
        print(
            "flips: "
                + (r.flips.isEmpty
                    ? "none"
                    : r.flips.map { "\($0.file) (\($0.sample.top1A) vs \($0.sample.top1B))" }.joined(separator: ", ")))
        print(
            "worst: "
                + r.worst(3).map { String(format: "%@ (max rel %.3g)", $0.file, $0.sample.output.maxRel) }.joined(
                    separator: ", "))
        print("  top-1 A  top-1 B  agree    max abs      cosine  first divergence  file")
        for i in r.images {
            let s = i.sample
            print(
                String(
                    format: "  %7d  %7d  %-5@ %10.3g  %10.6f  %-16@  %@", s.top1A, s.top1B, s.top1Agrees ? "yes" : "no",
                    s.output.maxAbs,
                    s.output.cosine, s.firstDivergence ?? "-", i.file))
        }
        print("")
    }
}
