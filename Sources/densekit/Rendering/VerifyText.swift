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
        var lines: [String] = []
        let counts =
            """
            \(grouped(report.parameters.trainable)) trainable parameters, \
            \(grouped(report.parameters.withBatchNormStatistics)) with BN statistics, \
            \(grouped(report.storedParameters)) \
            stored
            """
        if report.matches {
            lines.append("\(model): matches \(report.spec.name) (\(report.classes) classes; \(counts))")
        } else {
            let against = architecture == nil ? "closest architecture \(report.spec.name)" : report.spec.name
            lines.append(
                """
                \(model): does not match \(against): \(report.deviations.count) \
                deviation\(report.deviations.count == 1 ? "" : "s") (\(report.classes) classes; \(counts))
                """
            )
            let rows =
                [["layer", "check", "expected", "found"]]
                + report.deviations.map { [$0.layer, $0.check, $0.expected, $0.found] }
            let widths = (0..<4).map { c in rows.map { $0[c].count }.max() ?? 0 }
            for row in rows {
                lines.append(
                    "  "
                        + row.enumerated().map { c, cell in
                            c == 3 ? cell : cell + String(repeating: " ", count: widths[c] - cell.count)
                        }.joined(separator: "  "))
            }
        }
        let channels = "\(report.inputChannels) input channel\(report.inputChannels == 1 ? "" : "s")"
        let input = "\(channels), " + (report.inputSize.map { "input \($0)" } ?? "input size not fixed by the file")
        lines.append(
            """
            head: \(report.head.summary); \(input), final map \
            \(report.finalMapSize.map(\.description) ?? "-") (the head is \
            reported, never a deviation)
            """
        )
        lines.append(
            """
            growth rate \(report.growthRate), blocks \(report.blocks), compression \
            \(report.compression.map { String($0) } ?? "-"), bottleneck \(report.bottleneck ? "yes" : "no"), \
            BN epsilon \
            \(report.epsilons.map { String($0) }.joined(separator: ", "))
            """
        )
        return lines.joined(separator: "\n")
    }

    private func grouped(_ number: Int) -> String {
        let digits = String(number)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return out
    }
}
