import ArgumentParser
import DenseKit
import Foundation

/// Loads a model safely from untrusted bytes.
///
/// libhdf5 (a C library DenseKit cannot fix) crashes or loops forever on some corrupt files; the
/// fuzzers found both. So an HDF5 or `.keras` file is first imported by a child process
/// (`densekit probe FILE`, hidden): a crash or a hang there becomes exit 2 with one error line,
/// and only a file the child read cleanly is then imported here, by the same code. Every import
/// also has a deadline (60 s; DENSEKIT_IMPORT_DEADLINE overrides it): a valid DenseNet-264 takes
/// about a second.
func loadModel(_ path: String) throws -> DenseNet {
    let seconds = ProcessInfo.processInfo.environment["DENSEKIT_IMPORT_DEADLINE"].flatMap(Double.init) ?? 60
    if ModelLoader.readsThroughHDF5(path: path) { try probeInChild(path, seconds: seconds) }
    let done = OnceFlag()
    DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
        guard !done.isSet else { return }
        FileHandle.standardError.write(Data("error: \(path): import did not finish within \(Int(seconds)) s (the file is probably corrupt)\n".utf8))
        _exit(2)
    }
    defer { done.set() }
    return try CommandFailure.about(path) { try ModelLoader.load(path: path) }
}

/// Runs `densekit probe path` and turns a crash, a hang or an error there into this command's error.
private func probeInChild(_ path: String, seconds: Double) throws {
    let child = Process()
    child.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    child.arguments = ["probe", path]
    child.standardOutput = FileHandle.nullDevice
    // No crash report from the child: its crash is reported here, in one line.
    child.environment = ProcessInfo.processInfo.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 }
    let errors = Pipe()
    child.standardError = errors
    do { try child.run() } catch {
        throw CommandFailure(file: path, message: "cannot start the isolated reader (\(error.localizedDescription))")
    }
    // Drain the child's stderr while it runs, so that it can never block on a full pipe.
    let collected = Collected()
    let reader = Thread { collected.data = errors.fileHandleForReading.readDataToEndOfFile(); collected.done.signal() }
    reader.start()
    let deadline = Date().addingTimeInterval(seconds)
    while child.isRunning && Date() < deadline { usleep(2_000) }
    if child.isRunning {
        // SIGKILL: a caller may have left SIGTERM ignored, and ignored signals are inherited.
        kill(child.processIdentifier, SIGKILL)
        child.waitUntilExit()
        throw CommandFailure(file: path, message: "import did not finish within \(Int(seconds)) s (the file is probably corrupt)")
    }
    collected.done.wait()
    let message = String(decoding: collected.data, as: UTF8.self)
    switch (child.terminationReason, child.terminationStatus) {
    case (.exit, 0):
        return
    case (.exit, _):
        // The child's one error line names the file and the problem: pass it on.
        let line = message.split(separator: "\n").first { $0.hasPrefix("error: ") }.map(String.init)
        throw CommandFailure(file: path, message: line.map { String($0.dropFirst("error: \(path): ".count)) } ?? "cannot be read")
    default:
        throw CommandFailure(file: path, message: "the HDF5 library crashed reading this file (signal \(child.terminationStatus)); it is corrupt")
    }
}

/// `densekit probe FILE`: imports in this process and reports only the outcome (used by `loadModel`).
struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(shouldDisplay: false)
    @Argument var model: String

    func run() throws {
        _ = try CommandFailure.about(model) { try ModelLoader.load(path: model) }
    }
}

/// The child's stderr, read on another thread.
private final class Collected: @unchecked Sendable {
    var data = Data()
    let done = DispatchSemaphore(value: 0)
}

/// A flag set once, read from another thread.
final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
