import DenseKit

/// `diff --images --csv FILE`: the per-image table, one row per image (RFC 4180 quoting).
enum DiffCSV {
    static func table(_ r: DatasetDiff.Report) -> String {
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
}
