import DenseKit

/// `diff --images --csv FILE`: the per-image table, one row per image (RFC 4180 quoting).
enum DiffCSV {
    static func table(_ report: DatasetDiff.Report) -> String {
        func field(_ text: String) -> String {
            text.contains(where: { ",\"\n".contains($0) })
                ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        var out = "file,top1A,top1B,agrees,top5Agrees,maxAbs,maxRel,cosine,firstDivergence\n"
        for i in report.images {
            let sample = i.sample
            out +=
                [
                    field(i.file), "\(sample.top1A)", "\(sample.top1B)", "\(sample.top1Agrees)", "\(sample.top5Agrees)",
                    "\(sample.output.maxAbs)", "\(sample.output.maxRel)",
                    "\(sample.output.cosine)", sample.firstDivergence ?? "",
                ].joined(separator: ",") + "\n"
        }
        return out
    }
}
