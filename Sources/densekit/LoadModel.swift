import ArgumentParser
import DenseKit
import DenseKitGraph
import Foundation

/// Loads a model safely from untrusted bytes, for every command.
///
/// Files read through libhdf5 are imported in a child process (`densekit probe FILE`, hidden; see
/// `ImportIsolation`), so a crash or a hang of the C library is exit 2 with one line. Every import
/// also has a deadline (60 s; DENSEKIT_IMPORT_DEADLINE overrides it): a valid DenseNet-264 takes
/// about a second.
func loadModel(_ path: String) throws -> DenseNet {
    // getenv, not ProcessInfo (whose first use took 0.6 ms of every load).
    let seconds = getenv("DENSEKIT_IMPORT_DEADLINE").flatMap { Double(String(cString: $0)) } ?? 60
    let isolation = ImportIsolation(
        executable: ownExecutable(),
        arguments: ["probe"], deadline: seconds)
    let done = OnceFlag()
    DispatchQueue.global().asyncAfter(deadline: .now() + seconds + 1) {
        guard !done.isSet else { return }
        writeErrorLine("\(path): import did not finish within \(Int(seconds)) s (the file is probably corrupt)")
        _exit(2)
    }
    defer { done.set() }
    return try CommandFailure.about(path) { try ModelLoader.load(path: path, isolation: isolation) }
}

/// `densekit probe FILE`: the isolated reader's child; writes the imported graph to stdout.
struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(shouldDisplay: false)
    @Argument var model: String

    func run() throws {
        // A crash in libhdf5 kills this child by its signal, which the parent reports as the file's fault.
        CrashHandling.uninstall()
        ImportIsolation.serve(path: model)
    }
}

/// A flag set once, read from another thread.
final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool {
        lock.lock()
        defer { lock.unlock() }
        return value
    }
    func set() {
        lock.lock()
        value = true
        lock.unlock()
    }
}

/// This program's file, which `ImportIsolation` runs as the child (readlink of /proc/self/exe:
/// Foundation's `resolvingSymlinksInPath` took half a millisecond of every load).
func ownExecutable() -> String {
    var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX))
    let length = buffer.withUnsafeMutableBufferPointer { b in
        b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) { readlink("/proc/self/exe", $0, b.count) }
    }
    return length > 0 ? String(decoding: buffer.prefix(length), as: UTF8.self) : "/proc/self/exe"
}
