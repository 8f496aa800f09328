import DenseKit
import Foundation

/// The text `convert` prints: the file written, its validation, and what the target changed.
enum ConvertText {
    static func lines(_ outcome: Converter.Outcome, output: String) -> [String] {
        let validation = outcome.validation
        let arch =
            outcome.report.matches
            ? outcome.report.spec.name : "closest \(outcome.report.spec.name), deviations accepted"
        let stored = outcome.keepsInt8 ? "int8" : outcome.dtype.rawValue
        var lines = [
            """
            wrote \(output): \(outcome.format), \(outcome.bytes) bytes, \(stored) \
            (\(String(format: "%.3f", Double(outcome.bytes) / Double(outcome.rawTensorBytes))) \
            x the f32 tensor bytes), \
            \(arch)
            """,
            validation.bitIdentical
                ? "validated: output bit-identical to the source's"
                : String(
                    format: "validated: output max abs %.3g, max rel %.3g (limit %.3g), top-1 agreement %.0f%%",
                    validation.maxAbs, validation.maxRel, validation.tolerance, validation.top1Agreement * 100),
        ]
        for c in outcome.conventions { lines.append("\(c.change.rawValue) \(c.subject): \(c.detail)") }
        return lines
    }
}
