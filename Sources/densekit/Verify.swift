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
    @OptionGroup var rendering: OutputOptions

    func run() throws {
        let net = try loadModel(model)
        let report = try CommandFailure.about(model) { try Verifier().verify(net, against: arch?.name) }
        if rendering.json {
            printJSON(VerifyReport(report))
        } else {
            print(VerifyText(model: model, against: arch, report: report).text)
        }
        if !report.matches { throw ExitCode(1) }
    }
}
