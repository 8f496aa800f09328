import DenseKit
import Foundation

/// The text `diff` prints: for one input or a dataset, where the two models diverge and by how much.
struct DiffText {
    /// The two models' paths, as given.
    let nameA: String
    let nameB: String

    /// Where the two diverge first, the output's error, and every layer's comparison.
    func comparison(_ result: ModelDiff.Result) -> String {
        var lines: [String] = []
        let outputLine = String(
            format: "output max abs %.3g, max rel %.3g, cosine %.6f; top-1 agreement %.0f%%, top-5 %.0f%%",
            result.output.maxAbs, result.output.maxRel, result.output.cosine, result.top1Agreement * 100,
            result.top5Agreement * 100)
        if let first = result.firstDivergence {
            var location = ""
            if let channels = first.divergentChannels {
                location = " (channels \(channels.lowerBound)-\(channels.upperBound) of its output"
                if let block = first.divergentBlockChannels {
                    location += ", \(block.lowerBound)-\(block.upperBound) of the block's features"
                }
                location += ")"
            }
            lines.append("\(nameA) and \(nameB) diverge first at \(first.name)\(location): \(outputLine)")
        } else {
            lines.append("\(nameA) and \(nameB) agree within tolerance at every layer: \(outputLine)")
        }
        let pad = { (text: String, width: Int) in
            text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
        }
        // A quantised side adds the signal-to-quantisation-noise ratio and the codes' saturation.
        let quantised = result.quantized
        lines.append(
            "  " + pad("layer", 16) + "   max abs    max rel     cosine" + (quantised ? "   SQNR dB  saturated" : ""))
        let first = result.firstDivergence?.name
        for l in result.layers {
            let marker = l.name == first ? ">" : l.withinTolerance ? " " : "!"
            var line =
                "\(marker) " + pad(l.name, 16)
                + String(format: " %10.2e %10.2e %10.6f", l.metrics.maxAbs, l.metrics.maxRel, l.metrics.cosine)
            if quantised {
                line += String(format: " %9.1f", l.metrics.sqnr)
                line += l.saturation.map { String(format: " %9.2f%%", $0 * 100) } ?? "          -"
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// A dataset diff's totals and its per-image table, then an empty line.
    func dataset(_ result: DatasetDiff.Report) -> String {
        var lines: [String] = []
        let imageCount = result.images.count
        let agree = result.images.filter(\.sample.top1Agrees).count
        lines.append(
            String(
                format: "%@ and %@ over %d image%@: top-1 agreement %.1f%% (%d/%d), top-5 %.1f%%", nameA, nameB,
                imageCount,
                imageCount == 1 ? "" : "s",
                result.result.top1Agreement * 100, agree, imageCount, result.result.top5Agreement * 100))
        let divergences = result.firstDivergences
        lines.append(
            divergences.isEmpty
                ? "no layer is out of tolerance on any image"
                : "first divergent layer, counted over images: "
                    + divergences.map { "\($0.layer) on \($0.images)" }.joined(separator: ", "))
        lines.append(
            "flips: "
                + (result.flips.isEmpty
                    ? "none"
                    : result.flips.map { "\($0.file) (\($0.sample.top1A) vs \($0.sample.top1B))" }.joined(
                        separator: ", ")))
        lines.append(
            "worst: "
                + result.worst(3).map { String(format: "%@ (max rel %.3g)", $0.file, $0.sample.output.maxRel) }.joined(
                    separator: ", "))
        lines.append("  top-1 A  top-1 B  agree    max abs      cosine  first divergence  file")
        for i in result.images {
            let sample = i.sample
            lines.append(
                String(
                    format: "  %7d  %7d  %-5@ %10.3g  %10.6f  %-16@  %@", sample.top1A, sample.top1B,
                    sample.top1Agrees ? "yes" : "no",
                    sample.output.maxAbs,
                    sample.output.cosine, sample.firstDivergence ?? "-", i.file))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `--sensitivity`: the layers worst first, each with the output error it causes alone.
    func sensitivity(_ entries: [QuantizationSensitivity.Entry]) -> String {
        var lines = ["sensitivity (each layer alone quantised, every other float), worst first:"]
        lines.append("  layer            output max rel     cosine  top-1 agreement")
        for entry in QuantizationSensitivity.ranked(entries) {
            let name = entry.layer.padding(toLength: max(entry.layer.count, 16), withPad: " ", startingAt: 0)
            lines.append(
                "  " + name
                    + String(
                        format: " %14.3e %10.6f %15.1f%%", entry.output.maxRel, entry.output.cosine,
                        entry.top1Agreement * 100))
        }
        return lines.joined(separator: "\n")
    }
}
