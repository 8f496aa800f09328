import DenseKitGraph

/// The text `verify` prints: the verdict, each deviation as a table row, the head and the structure.
struct VerifyText {
    let model: String
    /// The architecture asked for (`--arch`), nil for the closest one.
    let architecture: ArchitectureSpec?
    let report: Verifier.Report

    init(model: String, against architecture: ArchitectureSpec?, report: Verifier.Report) {
        self.model = model
        self.architecture = architecture
        self.report = report
    }

    var text: String {
        let r = report
        var lines: [String] = []
        let counts =
            """
            \(grouped(r.parameters.trainable)) trainable parameters, \
            \(grouped(r.parameters.withBatchNormStatistics)) with BN statistics, \(grouped(r.storedParameters)) \
            stored
            """
        if r.matches {
            lines.append("\(model): matches \(r.spec.name) (\(r.classes) classes; \(counts))")
        } else {
            let against = architecture == nil ? "closest architecture \(r.spec.name)" : r.spec.name
            lines.append(
                """
                \(model): does not match \(against): \(r.deviations.count) \
                deviation\(r.deviations.count == 1 ? "" : "s") (\(r.classes) classes; \(counts))
                """
            )
            let rows =
                [["layer", "check", "expected", "found"]]
                + r.deviations.map { [$0.layer, $0.check, $0.expected, $0.found] }
            let widths = (0..<4).map { c in rows.map { $0[c].count }.max() ?? 0 }
            for row in rows {
                lines.append(
                    "  "
                        + row.enumerated().map { c, cell in
                            c == 3 ? cell : cell + String(repeating: " ", count: widths[c] - cell.count)
                        }.joined(separator: "  "))
            }
        }
        let input = r.inputSize.map { "input \($0)" } ?? "input size not fixed by the file"
        lines.append(
            """
            head: \(r.head.summary); \(input), final map \(r.finalMapSize.map(\.description) ?? "-") (the head is \
            reported, never a deviation)
            """
        )
        lines.append(
            """
            growth rate \(r.growthRate), blocks \(r.blocks), compression \
            \(r.compression.map { String($0) } ?? "-"), bottleneck \(r.bottleneck ? "yes" : "no"), BN epsilon \
            \(r.epsilons.map { String($0) }.joined(separator: ", "))
            """
        )
        return lines.joined(separator: "\n")
    }

    private func grouped(_ n: Int) -> String {
        let s = String(n)
        var out = ""
        for (i, ch) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return out
    }
}
