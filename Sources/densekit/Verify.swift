import ArgumentParser
import DenseKit
import DenseKitGraph
import Foundation

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a model against the paper's architectures; exit 0 only on an exact match.",
        discussion: "Architectures: \(ArchitectureSpec.all.map(\.name).joined(separator: ", ")).")

    @Argument(help: "The model file.") var model: String
    @Option(help: "The architecture to check against (default: the closest one).") var arch: ArchitectureSpec?
    @Flag(help: "Print one JSON object on stdout.") var json = false

    func run() throws {
        let net = try loadModel(model)
        let report = try CommandFailure.about(model) { try Verifier().verify(net, against: arch?.name) }
        if json {
            printJSON(jsonObject(report))
        } else {
            printText(report)
        }
        if !report.matches { throw ExitCode(1) }
    }

    private func jsonObject(_ r: Verifier.Report) -> [String: Any] {
        [
            "architecture": r.matches ? r.spec.name : NSNull(),
            "matches": r.matches,
            "closest": r.spec.name,
            "growthRate": r.growthRate,
            "blocks": r.blocks,
            "compression": r.compression.map { $0 as Any } ?? NSNull(),
            "bottleneck": r.bottleneck,
            "classes": r.classes,
            "batchNormEpsilon": r.epsilons.map(Double.init),
            "head": r.head.report(classes: r.classes),
            "inputSize": r.inputSize.map { [$0.height, $0.width] } ?? NSNull(),
            "finalMapSize": r.finalMapSize.map { [$0.height, $0.width] } ?? NSNull(),
            "parameters": [
                "trainable": r.parameters.trainable,
                "withBatchNormStatistics": r.parameters.withBatchNormStatistics,
                "stored": r.storedParameters,
            ],
            "deviations": r.deviations.map {
                ["layer": $0.layer, "check": $0.check, "expected": $0.expected, "found": $0.found]
            },
        ]
    }

    private func printText(_ r: Verifier.Report) {
        let counts =
            """
            \(grouped(r.parameters.trainable)) trainable parameters, \
            \(grouped(r.parameters.withBatchNormStatistics)) with BN statistics, \(grouped(r.storedParameters)) \
            stored
            """
        if r.matches {
            print("\(model): matches \(r.spec.name) (\(r.classes) classes; \(counts))")
        } else {
            let against = arch == nil ? "closest architecture \(r.spec.name)" : r.spec.name
            print(
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
                print(
                    "  "
                        + row.enumerated().map { c, cell in
                            c == 3 ? cell : cell + String(repeating: " ", count: widths[c] - cell.count)
                        }.joined(separator: "  "))
            }
        }
        let input = r.inputSize.map { "input \($0)" } ?? "input size not fixed by the file"
        print(
            """
            head: \(r.head.summary); \(input), final map \(r.finalMapSize.map(\.description) ?? "-") (the head is \
            reported, never a deviation)
            """
        )
        print(
            """
            growth rate \(r.growthRate), blocks \(r.blocks), compression \
            \(r.compression.map { String($0) } ?? "-"), bottleneck \(r.bottleneck ? "yes" : "no"), BN epsilon \
            \(r.epsilons.map { String($0) }.joined(separator: ", "))
            """
        )
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
