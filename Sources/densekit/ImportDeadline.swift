import DenseKit
import Foundation

/// Loads a model with a deadline. libhdf5 can loop forever on some corrupt files (found by fuzzing:
/// a damaged global heap behind a variable-length string attribute), and a thread stuck in C cannot
/// be cancelled; so if an import has not finished after `seconds`, the process reports the file and
/// exits 2. A valid DenseNet-264 imports in about a second; the deadline is sixty seconds
/// (DENSEKIT_IMPORT_DEADLINE overrides it, for tests).
func loadModel(_ path: String) throws -> DenseNet {
    let seconds = ProcessInfo.processInfo.environment["DENSEKIT_IMPORT_DEADLINE"].flatMap(Double.init) ?? 60
    let done = OnceFlag()
    DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
        guard !done.isSet else { return }
        FileHandle.standardError.write(Data("error: \(path): import did not finish within \(Int(seconds)) s (the file is probably corrupt)\n".utf8))
        _exit(2)
    }
    defer { done.set() }
    return try CommandFailure.about(path) { try ModelLoader.load(path: path) }
}

/// A flag set once, read from another thread.
final class OnceFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
