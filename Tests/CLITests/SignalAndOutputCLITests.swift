import DenseKitFormats
import Foundation
import TestSupport
import Testing

/// Signals and outputs (#42.3, 6, 7, 12, 13): a model file truncated while it is read, a crash signal,
/// SIGTERM during a convert, outputs that are not regular files, temporary files a killed process left,
/// and output names as long as the file system allows.
@Suite struct SignalAndOutputCLITests {
    let tiny = Fixtures.path("tv-tiny.pth")
    let input = Fixtures.path("input-64.npy")

    /// Starts `densekit arguments` with stderr captured in a file.
    func start(_ arguments: [String], in folder: URL) throws -> (Process, URL) {
        let process = Process()
        process.executableURL = try densekitBinary()
        process.arguments = arguments
        let stderr = folder.appendingPathComponent("stderr-\(UUID().uuidString).txt")
        FileManager.default.createFile(atPath: stderr.path, contents: nil)
        process.standardError = try FileHandle(forWritingTo: stderr)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        return (process, stderr)
    }

    /// Waits at most `seconds` for `condition`, polling every millisecond.
    func wait(seconds: Double, until condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            usleep(1000)
        }
        return false
    }

    func finish(_ process: Process) -> Bool {
        let done = wait(seconds: 60) { !process.isRunning }
        if !done { process.terminate() }
        process.waitUntilExit()
        return done
    }

    /// A `.dnk` truncated by another process once `run` has mapped it: exit 2 and one line naming the
    /// file (or, when every byte was already read, a normal run), never SIGBUS or a hang.
    @Test(.enabled(if: Fixtures.full != nil, "full-size fixtures not built"))
    func aModelTruncatedWhileReadIsOneLine() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = try #require(Fixtures.full) + "/densenet121.pth"
        let model = folder.appendingPathComponent("m.dnk").path
        let pristine = folder.appendingPathComponent("pristine.dnk").path
        #expect(try densekit(["convert", source, "--to", "dnk", "-o", pristine]).status == 0)
        let batch = try Fixtures.npy(try #require(Fixtures.full) + "/input-224.npy")
        let input = folder.appendingPathComponent("batch.npy").path
        try NPY.write(
            NPY.Array(shape: [8, 3, 224, 224], values: Array(repeating: batch.values, count: 8).flatMap { $0 }),
            to: input)
        var changed = 0
        for _ in 0..<5 {
            try? FileManager.default.removeItem(atPath: model)
            try FileManager.default.copyItem(atPath: pristine, toPath: model)
            let (process, stderr) = try start(
                ["run", model, "--input", input, "--output", folder.appendingPathComponent("y.npy").path], in: folder)
            // Truncated as soon as the file appears among the process's mappings.
            let maps = "/proc/\(process.processIdentifier)/maps"
            _ = wait(seconds: 30) { (try? String(contentsOfFile: maps, encoding: .utf8))?.contains(model) ?? false }
            #expect(truncate(model, 1_000_000) == 0)
            #expect(finish(process), "still running after 60 s")
            let text = try String(contentsOf: stderr, encoding: .utf8)
            #expect(process.terminationReason == .exit, "killed by signal \(process.terminationStatus): \(text)")
            if process.terminationStatus == 2 {
                #expect(text.split(separator: "\n").count == 1 && text.hasPrefix("error: \(model): "), "\(text)")
                if text.contains("the file changed while it was being read") { changed += 1 }
            } else {
                #expect(process.terminationStatus == 0, "\(text)")
            }
        }
        #expect(changed > 0, "no run read the file after it was truncated")
    }

    /// A crash signal (here sent by another process) is one line and exit 2, never a stack trace or a
    /// backtracer that keeps stderr open.
    @Test func aCrashSignalIsOneLine() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("y.npy").path
        let (process, stderr) = try start(
            ["run", tiny, "--input", input, "--output", output, "--repeat", "100000"], in: folder)
        // Once the handlers are installed: SIGINT (which only DenseKit catches) among the caught signals.
        let status = "/proc/\(process.processIdentifier)/status"
        let installed = wait(seconds: 30) {
            guard let text = try? String(contentsOfFile: status, encoding: .utf8),
                let line = text.split(separator: "\n").first(where: { $0.hasPrefix("SigCgt:") }),
                let mask = UInt64(line.dropFirst("SigCgt:".count).trimmingCharacters(in: .whitespaces), radix: 16)
            else { return false }
            return mask & (1 << (UInt64(SIGINT) - 1)) != 0
        }
        #expect(installed)
        kill(process.processIdentifier, SIGSEGV)
        #expect(finish(process))
        let text = try String(contentsOf: stderr, encoding: .utf8)
        #expect(process.terminationReason == .exit && process.terminationStatus == 2, "\(text)")
        #expect(
            text == "error: densekit stopped on signal 11, an internal error: please report it with the command "
                + "and the files it was given\n")
    }

    /// SIGTERM while a convert has its temporary file: the file is removed and the process dies of the
    /// signal, leaving neither the output nor a `.partial` file.
    @Test(.enabled(if: Fixtures.full != nil, "full-size fixtures not built"))
    func sigtermDuringAConvertLeavesNothing() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = try #require(Fixtures.full) + "/densenet121.pth"
        let output = folder.appendingPathComponent("m.onnx").path
        let (process, _) = try start(["convert", source, "-o", output], in: folder)
        let partial = {
            ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).contains {
                $0.hasPrefix(".m.onnx.partial-")
            }
        }
        #expect(wait(seconds: 60, until: partial), "no temporary file appeared")
        kill(process.processIdentifier, SIGTERM)
        #expect(finish(process))
        #expect(process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGTERM)
        #expect(!partial() && !FileManager.default.fileExists(atPath: output))
    }

    /// An output that is a FIFO or a folder is refused before anything is written; as root, a device
    /// would otherwise be replaced by the renamed file.
    @Test func anOutputThatIsNotARegularFileIsRefused() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("fifo.npy").path
        let directory = folder.appendingPathComponent("dir.npy").path
        #expect(mkfifo(fifo, 0o600) == 0)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        for (output, kind) in [(fifo, "a FIFO"), (directory, "a directory")] {
            let run = try densekit(["run", tiny, "--input", input, "--output", output], killAfter: 30)
            #expect(run.status == 2)
            #expect(run.stderr.hasPrefix("error: \(output): is \(kind), not a regular file"), "\(run.stderr)")
            let convert = try densekit(["convert", tiny, "--to", "dnk", "-o", output], killAfter: 30)
            #expect(
                convert.status == 2 && convert.stderr.hasPrefix("error: \(output): is \(kind)"), "\(convert.stderr)")
        }
        var info = stat()
        #expect(lstat(fifo, &info) == 0 && info.st_mode & S_IFMT == S_IFIFO)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == ["dir.npy", "fifo.npy"])
    }

    /// Temporary files of a process that no longer exists are removed when that output is next written;
    /// those of a live process (this one) are not touched.
    @Test func temporaryFilesOfDeadProcessesAreRemoved() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let dead = ".y.npy.partial-\(finished.processIdentifier)-0123abcd"
        let live = ".y.npy.partial-\(getpid())-0123abcd"
        let other = ".z.npy.partial-\(finished.processIdentifier)-0123abcd"
        for name in [dead, live, other] {
            #expect(FileManager.default.createFile(atPath: folder.appendingPathComponent(name).path, contents: nil))
        }
        let run = try densekit(["run", tiny, "--input", input, "--output", folder.appendingPathComponent("y.npy").path])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == [live, other, "y.npy"])
    }

    /// An output name of 254 bytes (the file system takes 255) is written; the temporary name is
    /// shortened to fit.
    @Test func theLongestOutputNamesAreWritten() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in [String(repeating: "a", count: 250) + ".npy", String(repeating: "é", count: 125) + ".npy"] {
            let output = folder.appendingPathComponent(name).path
            let run = try densekit(["run", tiny, "--input", input, "--output", output])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(try NPY.read(path: output).shape == [2, 10])
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).count == 2)
    }

    /// The temporary file is created anew (a symlink planted under its name is not followed) and is
    /// renamed into place only while its name holds the file written.
    @Test func aTemporaryFileIsNeverWrittenThroughOrSwapped() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let victim = folder.appendingPathComponent("victim").path
        #expect(FileManager.default.createFile(atPath: victim, contents: Data("keep".utf8)))
        let planted = folder.appendingPathComponent(".out.partial-1-00000000").path
        #expect(symlink(victim, planted) == 0)
        #expect(PartialFiles.create(planted) == -1 && errno == EEXIST)
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "keep")

        let output = folder.appendingPathComponent("out.bin").path
        let temporary = try AtomicFile.writeTemporary(Data("ours".utf8), beside: output)
        #expect(URL(fileURLWithPath: temporary).lastPathComponent.hasPrefix(".out.bin.partial-\(getpid())-"))
        #expect(unlink(temporary) == 0 && symlink(victim, temporary) == 0)
        #expect(throws: WriteError.temporaryReplaced(temporary)) { try AtomicFile.commit(temporary, to: output) }
        #expect(!FileManager.default.fileExists(atPath: output))
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "keep")

        let kept = try AtomicFile.writeTemporary(Data("ours".utf8), beside: output)
        try AtomicFile.commit(kept, to: output)
        #expect(try String(contentsOfFile: output, encoding: .utf8) == "ours")
    }
}
