import DenseKitFormats
import DenseKitGraph
import Foundation

/// Imports a file in a child process, for the readers whose C library cannot be trusted with
/// corrupt bytes: libhdf5 (C that DenseKit cannot fix) crashes or loops forever on some corrupt
/// files; the fuzzers found both.
///
/// The child (a program that calls `serve(path:)`, such as `densekit probe FILE`) imports and
/// validates the file once and writes the canonical graph to its stdout as a `.dnk` (checksummed),
/// after the source's description and tensor names; the parent reads that `.dnk` like any other, so
/// every file is imported exactly once. A crash, a hang past the deadline or an error in the child
/// becomes one `ImportError` here.
public struct ImportIsolation: Sendable {
    /// The program to run (a path: a URL is made only when a child is started), and the arguments
    /// that come before the file's path.
    public var executable: String
    public var arguments: [String]
    /// Seconds the child may take before it is killed.
    public var deadline: Double

    public init(executable: String, arguments: [String], deadline: Double) {
        self.executable = executable
        self.arguments = arguments
        self.deadline = deadline
    }

    /// The child's side: imports `path` in this process and writes the graph to stdout. On failure,
    /// the one error line goes to stderr and the exit status is 2.
    public static func serve(path: String) -> Never {
        limitMemory(forFileOf: (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0)
        do {
            let net = try ModelLoader.load(path: path)
            FileHandle.standardOutput.write(try encode(net))
            exit(0)
        } catch {
            FileHandle.standardError.write(Data("error: \(path): \(error)\n".utf8))
            exit(2)
        }
    }

    /// Caps this process's address space: libhdf5 allocates what a corrupt file's lengths claim
    /// (a variable-length string of 4 GiB, say) before it can notice they are wrong. With the cap the
    /// allocation fails, libhdf5 reports an error or the child dies, and the parent says so in one
    /// line. 2 GiB plus four times the file (it is mapped, and read once) is ample for any DenseNet.
    package static func limitMemory(forFileOf bytes: Int) {
        // AddressSanitizer (make test-asan) reserves terabytes of address space for its shadow memory.
        guard dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") == nil else { return }
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit) == 0 else { return }
        let cap = rlim_t(clamping: (2 << 30) + 4 * max(bytes, 0))
        limit.rlim_cur = min(cap, limit.rlim_max)
        _ = setrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit)
    }

    /// The parent's side: runs the child on `path` and decodes what it wrote.
    package func load(path: String) throws -> DenseNet {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: executable, isDirectory: false)
        child.arguments = arguments + [path]
        // No crash report from the child: its crash is reported here, in one line.
        child.environment = ProcessInfo.processInfo.environment.merging(["SWIFT_BACKTRACE": "enable=no"]) { $1 }
        let output = Pipe()
        let errors = Pipe()
        child.standardOutput = output
        child.standardError = errors
        child.standardInput = FileHandle.nullDevice
        do { try child.run() } catch {
            throw ImportError.unreadable("cannot start the isolated reader (\(error.localizedDescription))")
        }
        // Both pipes are drained while the child runs, so that it can never block on a full pipe.
        let graph = Drained(output)
        let message = Drained(errors)
        let end = Date().addingTimeInterval(deadline)
        while child.isRunning && Date() < end { usleep(2_000) }
        if child.isRunning {
            // SIGKILL: a caller may have left SIGTERM ignored, and ignored signals are inherited.
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            throw ImportError.malformed(
                "import did not finish within \(Int(deadline)) s (the file is probably corrupt)")
        }
        child.waitUntilExit()
        switch (child.terminationReason, child.terminationStatus) {
        case (.exit, 0):
            return try Self.decode(graph.wait(), path: path)
        case (.exit, _):
            // The child's one error line names the file and the problem: pass the problem on.
            let text = String(decoding: message.wait(), as: UTF8.self)
            let line = text.split(separator: "\n").first { $0.hasPrefix("error: ") }.map(String.init)
            let problem = line.map { line in
                let named = "error: \(path): "
                return String(line.dropFirst(line.hasPrefix(named) ? named.count : "error: ".count))
            }
            throw ImportError.malformed(problem ?? "cannot be read")
        default:
            throw ImportError.malformed(
                "the HDF5 library crashed reading this file (signal \(child.terminationStatus)); it is corrupt")
        }
    }

    // MARK: the transfer

    /// What the child hands back beside the graph: what a `.dnk` does not keep, the source's
    /// description and the tensors' names in the source (by canonical name).
    private struct Transfer: Codable {
        var source: ModelSource
        var tensorNames: [String: String]
    }

    /// The child's output: the transfer's JSON length (8 bytes, little-endian), the JSON, then the
    /// graph as a `.dnk` (each tensor in the dtype the source stored it in: f16 and bf16 values
    /// survive exactly).
    package static func encode(_ net: DenseNet) throws -> Data {
        var names: [String: String] = [:]
        for (canonical, tensor) in CanonicalLayout.tensors(of: net) { names[canonical] = tensor.name }
        let transfer = try JSONEncoder().encode(Transfer(source: net.source, tensorNames: names))
        let provenance = Provenance(
            sourceFile: net.source.path, sourceSHA256: "", sourceFormat: net.source.format.rawValue,
            producer: net.source.producer)
        let metadata = try DNKModelWriter().metadata(net, dtype: .f32, provenance: provenance).json()
        var output = withUnsafeBytes(of: UInt64(transfer.count).littleEndian) { Data($0) }
        output.append(transfer)
        output.append(try DNKWriter.encode(net, metadata: metadata) { $0.storedDType })
        return output
    }

    /// The graph the child wrote, read as any `.dnk` is, with the source's description and tensor
    /// names put back.
    package static func decode(_ output: Data, path: String) throws -> DenseNet {
        guard output.count >= 8 else { throw ImportError.malformed("the isolated reader's output is truncated") }
        let length = output.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard length <= UInt64(output.count - 8) else {
            throw ImportError.malformed("the isolated reader's output is truncated")
        }
        let split = output.startIndex + 8 + Int(length)
        guard let transfer = try? JSONDecoder().decode(Transfer.self, from: output[(output.startIndex + 8)..<split])
        else {
            throw ImportError.malformed("the isolated reader's output has no source description")
        }
        let net = try DNKReader.load(data: Data(output[split...]), path: path)
        var restored = net.mappingTensors { tensor in
            var tensor = tensor
            tensor.name = transfer.tensorNames[tensor.name] ?? tensor.name
            return tensor
        }
        restored.source = transfer.source
        return restored
    }
}

/// A pipe read to its end on another thread.
private final class Drained: @unchecked Sendable {
    private var data = Data()
    private let done = DispatchSemaphore(value: 0)

    init(_ pipe: Pipe) {
        let handle = pipe.fileHandleForReading
        Thread { [self] in
            data = handle.readDataToEndOfFile()
            done.signal()
        }.start()
    }

    func wait() -> Data {
        done.wait()
        return data
    }
}
