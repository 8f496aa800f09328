import ArgumentParser
import DenseKit
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
    @Option(help: "Input array (.npy).") var input: String
    @OptionGroup var execution: ExecutionOptions
    @Option(help: "Absolute tolerance.") var atol: Float = Tolerance.defaultAbsolute
    @Option(help: "Relative tolerance (to the layer's largest magnitude).") var rtol: Float = Tolerance.defaultRelative
    @Flag(help: "Print one JSON object on stdout.") var json = false
    @Option(help: "Write a self-contained HTML report with a chart of the error per layer.") var report: String?

    func validate() throws {
        guard atol >= 0, rtol >= 0, atol.isFinite, rtol.isFinite else { throw ValidationError("--atol and --rtol must be finite and >= 0.") }
    }

    func run() throws {
        let netA = try loadModel(a)
        let netB = try loadModel(b)
        let diff = try CommandFailure.about(b) {
            try ModelDiff(netA, netB, tolerance: Tolerance(absolute: atol, relative: rtol), threads: execution.threadCount)
        }
        let array = try CommandFailure.about(input) { try NPY.read(path: input) }
        let layout = execution.inputLayout ?? netA.input.layout
        let x = try CommandFailure.about(input) { try ModelInput(array, layout: layout, for: netA) }
        _ = try CommandFailure.about(input) { try ModelInput(array, layout: layout, for: netB) }
        let result = try CommandFailure.about(a) { try diff.run(x.values, batch: x.batch, height: x.height, width: x.width) }
        if let report {
            try CommandFailure.about(report) { try AtomicFile.write(Data(DiffReport(result: result, a: a, b: b).html.utf8), to: report) }
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
        output["samples"] = r.samples.map { ["top1A": $0.top1A, "top1B": $0.top1B, "top1Agrees": $0.top1Agrees, "top5Agrees": $0.top5Agrees] }
        return [
            "withinTolerance": r.withinTolerance,
            "tolerance": ["atol": Double(r.tolerance.absolute), "rtol": Double(r.tolerance.relative)],
            "output": output,
            "layers": r.layers.map(layerObject),
            "firstDivergence": r.firstDivergence.map(layerObject) ?? NSNull(),
        ]
    }

    private func printText(_ r: ModelDiff.Result) {
        let outputLine = String(format: "output max abs %.3g, max rel %.3g, cosine %.6f; top-1 agreement %.0f%%, top-5 %.0f%%",
                                r.output.maxAbs, r.output.maxRel, r.output.cosine, r.top1Agreement * 100, r.top5Agreement * 100)
        if let first = r.firstDivergence {
            var location = ""
            if let c = first.divergentChannels {
                location = " (channels \(c.lowerBound)-\(c.upperBound) of its output"
                if let o = first.blockChannelOffset { location += ", \(o + c.lowerBound)-\(o + c.upperBound) of the block's features" }
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
            print("\(marker) " + pad(l.name, 16) + String(format: " %10.2e %10.2e %10.6f", l.metrics.maxAbs, l.metrics.maxRel, l.metrics.cosine))
        }
    }
}
