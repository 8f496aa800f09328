import DenseKit
import Foundation

/// The text `convert` prints: the file written, its validation, and what the target changed.
enum ConvertText {
    static func lines(_ o: Converter.Outcome, output: String) -> [String] {
        let v = o.validation
        let arch = o.report.matches ? o.report.spec.name : "closest \(o.report.spec.name), deviations accepted"
        var lines = [
            """
            wrote \(output): \(o.format), \(o.bytes) bytes, \(o.dtype.rawValue) \
            (\(String(format: "%.3f", Double(o.bytes) / Double(o.rawTensorBytes))) x the f32 tensor bytes), \
            \(arch)
            """,
            v.bitIdentical
                ? "validated: output bit-identical to the source's"
                : String(
                    format: "validated: output max abs %.3g, max rel %.3g (limit %.3g), top-1 agreement %.0f%%",
                    v.maxAbs, v.maxRel, v.tolerance, v.top1Agreement * 100),
        ]
        for c in o.conventions { lines.append("\(c.change.rawValue) \(c.subject): \(c.detail)") }
        return lines
    }
}
