import Foundation

/// Runs the built `densekit` binary, as a user would, and captures what it prints.
public struct CLIResult {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    /// stdout parsed as the one JSON object `--json` promises.
    public func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any] else {
            throw CLIError.notJSON(stdout)
        }
        return object
    }
}

public enum CLIError: Error {
    case notJSON(String)
    case noBinary
}

/// The `densekit` binary built next to the test bundle (CLITests depends on the executable target).
public func densekitBinary() throws -> URL {
    if let explicit = ProcessInfo.processInfo.environment["DENSEKIT_BIN"] { return URL(fileURLWithPath: explicit) }
    let here = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [here, here.deletingLastPathComponent()] {
        let url = candidate.appendingPathComponent("densekit")
        if FileManager.default.isExecutableFile(atPath: url.path) { return url }
    }
    for config in ["release", "debug"] {
        let url = Fixtures.root.appendingPathComponent(".build/\(config)/densekit")
        if FileManager.default.isExecutableFile(atPath: url.path) { return url }
    }
    throw CLIError.noBinary
}

/// With `fileSizeLimit` (in the shell's `ulimit -f` blocks) the binary runs under that limit on the
/// size of any file it writes: a stand-in for a full disk. With `killAfter` (seconds) a run that hangs
/// is killed (status 137), so a test of a hang fails instead of hanging.
public func densekit(
    _ arguments: [String], in directory: URL? = nil, environment: [String: String] = [:],
    fileSizeLimit: Int? = nil, killAfter: Int? = nil
) throws -> CLIResult {
    let process = Process()
    if let killAfter {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = ["-s", "KILL", "\(killAfter)", try densekitBinary().path] + arguments
    } else if let fileSizeLimit {
        // SIGXFSZ back to its default (killing) action, as in a user's shell: the test runner may ignore it.
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            [
                "--default-signal=XFSZ", "/bin/sh", "-c", "ulimit -f \(fileSizeLimit) && exec \"$0\" \"$@\"",
                try densekitBinary().path,
            ] + arguments
    } else {
        process.executableURL = try densekitBinary()
        process.arguments = arguments
    }
    if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    if let directory { process.currentDirectoryURL = directory }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read both pipes while the process runs so neither fills up.
    final class Box: @unchecked Sendable { var data = Data() }
    let errBox = Box()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errBox.data = err.fileHandleForReading.readDataToEndOfFile()
        group.leave()
    }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    let errData = errBox.data
    process.waitUntilExit()
    return CLIResult(
        status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData, as: UTF8.self))
}
