import Foundation

/// The temporary files `AtomicFile` writes (`.<name>.partial-<pid>-<random>`): their names, their
/// creation, and their removal when the process is told to stop or has died.
public enum PartialFiles {
    /// The temporary files of this process not yet renamed or removed, as C strings the signal
    /// handler can unlink without allocating. Entries are never freed: a process writes a handful.
    private nonisolated(unsafe) static let open: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
        let slots = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: capacity)
        slots.initialize(repeating: nil, count: capacity)
        return slots
    }()
    private static let capacity = 64
    private static let lock = NSLock()
    /// Each open temporary file's device and inode, as created: `isUnchanged` compares them with
    /// what the path names before it is renamed into place.
    private nonisolated(unsafe) static var identities: [String: (dev_t, ino_t)] = [:]

    /// On SIGINT, SIGTERM and SIGHUP, removes this process's temporary files, then dies of the signal
    /// as it would have. For programs (the command-line tool), not for libraries: it replaces those
    /// signals' handlers.
    public static func removeOnTermination() {
        _ = open  // made before any handler can read it
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { received in
                for index in 0..<PartialFiles.capacity {
                    if let path = PartialFiles.open[index] { unlink(path) }
                }
                Glibc.signal(received, SIG_DFL)
                raise(received)
            }
            sigemptyset(&action.sa_mask)
            sigaction(signal, &action, nil)
            // A blocked signal is inherited from the parent (a test runner, a supervisor): unblocked,
            // so that the handler runs instead of the signal waiting until the process exits.
            var unblock = sigset_t()
            sigemptyset(&unblock)
            sigaddset(&unblock, signal)
            pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        }
    }

    /// A new temporary name for the file `name`: `stem(of:)`, the process id and a random number.
    static func name(for name: String) -> String {
        stem(of: name) + String(format: "%d-%08x", getpid(), UInt32.random(in: 0...UInt32.max))
    }

    /// `.<name>.partial-`, `name` shortened (at a character boundary) so that the stem, a process id
    /// of up to 10 digits and `-<8 hex digits>` fit in the file system's 255 bytes.
    private static func stem(of name: String) -> String {
        let budget = AtomicFile.maximumNameBytes - ".".utf8.count - ".partial-".utf8.count - 10 - 9
        var kept = ""
        var used = 0
        for character in name {
            used += character.utf8.count
            if used > budget { break }
            kept.append(character)
        }
        return "." + kept + ".partial-"
    }

    /// Creates the file (it must not exist, and a symlink in its place is not followed) and records it
    /// for removal on termination; the descriptor, or -1 with `errno` set.
    package static func create(_ path: String) -> Int32 {
        // Recorded before the file exists: a signal between its creation and its recording would leave
        // it behind (unlinking a name not yet created is harmless).
        lock.lock()
        let slot = (0..<capacity).first(where: { open[$0] == nil })
        if let slot { open[slot] = strdup(path) }
        lock.unlock()
        let descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else {
            let failure = errno
            if let slot {
                lock.lock()
                open[slot] = nil
                lock.unlock()
            }
            errno = failure
            return descriptor
        }
        var info = stat()
        fstat(descriptor, &info)
        lock.lock()
        defer { lock.unlock() }
        identities[path] = (info.st_dev, info.st_ino)
        return descriptor
    }

    /// Whether `path` still names the regular file `create` made there (not a file or a symlink that
    /// another process, able to write to the folder, put in its place).
    package static func isUnchanged(_ path: String) -> Bool {
        lock.lock()
        let identity = identities[path]
        lock.unlock()
        var info = stat()
        guard let identity, lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return false }
        return info.st_dev == identity.0 && info.st_ino == identity.1
    }

    /// Stops tracking `path` (renamed into place or removed).
    static func forget(_ path: String) {
        lock.lock()
        defer { lock.unlock() }
        identities[path] = nil
        for index in 0..<capacity {
            if let entry = open[index], String(cString: entry) == path { open[index] = nil }
        }
    }

    /// Removes the temporary files for `name` in `folder` whose process no longer exists.
    static func removeStale(of name: String, in folder: String) {
        let stem = stem(of: name)
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for entry in entries where entry.hasPrefix(stem) {
            let parts = entry.dropFirst(stem.count).split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let pid = Int32(parts[0]), pid > 0, parts[1].count == 8,
                parts[1].allSatisfy(\.isHexDigit)
            else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                unlink((folder as NSString).appendingPathComponent(entry))
            }
        }
    }
}
