import ArgumentParser
import DenseKit
import DenseKitFormats
import DenseKitGraph
import Foundation

/// The `densekit` command: one subcommand per job, errors mapped to the contract's exit codes.
@main
struct DenseKitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "densekit",
        abstract: "Import, verify, run, diff and convert DenseNet models.",
        version: DenseKitVersion.string,
        subcommands: [Inspect.self, Verify.self, Run.self, Diff.self, Convert.self, Preprocess.self, Probe.self])

    static func main() {
        // A file-size limit (ulimit -f) would kill the process mid-write with SIGXFSZ, leaving the
        // temporary file behind; ignored, the write fails like a full disk and is reported and cleaned up.
        signal(SIGXFSZ, SIG_IGN)
        CrashHandling.install()
        PartialFiles.removeOnTermination()
        do {
            var command = try parseAsRoot(joiningNegativeNumbers(Array(CommandLine.arguments.dropFirst())))
            try command.run()
        } catch let failure as CommandFailure {
            writeErrorLine("\(failure.file): \(failure.message)")
            Foundation.exit(2)
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch {
            if exitCode(for: error) == .success { exit(withError: error) }
            let text = oneLine(fullMessage(for: error))
            writeErrorLine(text)
            Foundation.exit(2)
        }
    }
}

/// `--threads -1` as `--threads=-1`: the parser would take `-1` for a flag and say the value is missing;
/// joined, the option's own check says what is wrong with the number.
func joiningNegativeNumbers(_ arguments: [String]) -> [String] {
    var out: [String] = []
    var index = 0
    while index < arguments.count {
        let argument = arguments[index]
        if argument.hasPrefix("--"), argument != "--", !argument.contains("="), index + 1 < arguments.count,
            case let next = arguments[index + 1], next.count > 1, next.hasPrefix("-"),
            next.dropFirst().first?.isNumber == true
        {
            out.append(argument + "=" + next)
            index += 2
        } else {
            out.append(argument)
            index += 1
        }
    }
    return out
}

/// Writes `error: <text>` to stderr as exactly one line: control characters in `text` (a newline or a
/// terminal escape in a file name, say) are written escaped, `\n` or `\x1B`, never as themselves.
func writeErrorLine(_ text: String) {
    FileHandle.standardError.write(Data("error: \(escapingControlCharacters(text))\n".utf8))
}

/// `text` with every control character (C0, DEL and C1) written as an escape.
func escapingControlCharacters(_ text: String) -> String {
    var out = ""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\u{00}"..."\u{1F}", "\u{7F}"..."\u{9F}": out += String(format: "\\x%02X", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out
}

/// The parser's message on one line: its first line, with a list of choices that follows it (`  - name`
/// lines) joined on; usage and help lines dropped.
func oneLine(_ message: String) -> String {
    let lines = message.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    guard var text = lines.first else { return message }
    if text.hasPrefix("Error: ") { text.removeFirst(7) }
    let choices = lines.dropFirst().prefix { $0.hasPrefix("  - ") }.map { $0.dropFirst(4) }
    return choices.isEmpty ? text : text + " " + choices.joined(separator: ", ")
}

/// An unusable input: printed as `error: <file>: <message>`, exit 2.
struct CommandFailure: Error {
    let file: String
    let message: String

    /// Runs `body`, attributing any DenseKit error to `file`.
    static func about<T>(_ file: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as CommandFailure {
            throw e
        } catch let e as CustomStringConvertible {
            throw CommandFailure(file: file, message: e.description)
        } catch {
            throw CommandFailure(file: file, message: "\(error)")
        }
    }
}

/// Writes exactly one JSON object to stdout.
/// Progress and logs: stderr, never stdout.
func log(_ message: String) {
    FileHandle.standardError.write(Data("\(message)\n".utf8))
}
