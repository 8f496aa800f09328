import DenseKit
import Foundation

/// The text `diff` prints: for one input or a dataset, where the two models diverge and by how much.
struct DiffText {
    /// The two models' paths, as given.
    let a: String
    let b: String

    /// Where the two diverge first, the output's error, and every layer's comparison.
    func comparison(_ r: ModelDiff.Result) -> String {
        var lines: [String] = []
        let outputLine = String(
            format: "output max abs %.3g, max rel %.3g, cosine %.6f; top-1 agreement %.0f%%, top-5 %.0f%%",
            r.output.maxAbs, r.output.maxRel, r.output.cosine, r.top1Agreement * 100, r.top5Agreement * 100)
        if let first = r.firstDivergence {
            var location = ""
            if let c = first.divergentChannels {
                location = " (channels \(c.lowerBound)-\(c.upperBound) of its output"
                if let block = first.divergentBlockChannels {
                    location += ", \(block.lowerBound)-\(block.upperBound) of the block's features"
                }
                location += ")"
            }
            lines.append("\(a) and \(b) diverge first at \(first.name)\(location): \(outputLine)")
        } else {
            lines.append("\(a) and \(b) agree within tolerance at every layer: \(outputLine)")
        }
        let pad = { (s: String, n: Int) in s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        lines.append("  " + pad("layer", 16) + "   max abs    max rel     cosine")
        let first = r.firstDivergence?.name
        for l in r.layers {
            let marker = l.name == first ? ">" : l.withinTolerance ? " " : "!"
            lines.append(
                "\(marker) " + pad(l.name, 16)
                    + String(format: " %10.2e %10.2e %10.6f", l.metrics.maxAbs, l.metrics.maxRel, l.metrics.cosine))
        }
        return lines.joined(separator: "\n")
    }

    /// A dataset diff's totals and its per-image table, then an empty line.
    func dataset(_ r: DatasetDiff.Report) -> String {
        var lines: [String] = []
        let n = r.images.count
        let agree = r.images.filter(\.sample.top1Agrees).count
        lines.append(
            String(
                format: "%@ and %@ over %d image%@: top-1 agreement %.1f%% (%d/%d), top-5 %.1f%%", a, b, n,
                n == 1 ? "" : "s",
                r.result.top1Agreement * 100, agree, n, r.result.top5Agreement * 100))
        let divergences = r.firstDivergences
        lines.append(
            divergences.isEmpty
                ? "no layer is out of tolerance on any image"
                : "first divergent layer, counted over images: "
                    + divergences.map { "\($0.layer) on \($0.images)" }.joined(separator: ", "))
        lines.append(
            "flips: "
                + (r.flips.isEmpty
                    ? "none"
                    : r.flips.map { "\($0.file) (\($0.sample.top1A) vs \($0.sample.top1B))" }.joined(separator: ", ")))
        lines.append(
            "worst: "
                + r.worst(3).map { String(format: "%@ (max rel %.3g)", $0.file, $0.sample.output.maxRel) }.joined(
                    separator: ", "))
        lines.append("  top-1 A  top-1 B  agree    max abs      cosine  first divergence  file")
        for i in r.images {
            let s = i.sample
            lines.append(
                String(
                    format: "  %7d  %7d  %-5@ %10.3g  %10.6f  %-16@  %@", s.top1A, s.top1B, s.top1Agrees ? "yes" : "no",
                    s.output.maxAbs,
                    s.output.cosine, s.firstDivergence ?? "-", i.file))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
