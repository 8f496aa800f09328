import Foundation

/// Prints a report as the one JSON object `--json` promises (keys sorted, indented). The reports say
/// how each value is written: a non-finite number as `null` (`ReportNumber`), a missing value as
/// `null` where the contract keeps the key (`Nullable`).
func printJSON(_ report: some Encodable) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    do {
        FileHandle.standardOutput.write(try encoder.encode(report))
        FileHandle.standardOutput.write(Data("\n".utf8))
    } catch {
        writeErrorLine("cannot write the JSON output (\(error)), an internal error")
        Foundation.exit(2)
    }
}
