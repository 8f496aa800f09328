import ArgumentParser
import DenseKit
import Foundation

/// Options shared by the commands that execute a model.
struct ExecutionOptions: ParsableArguments {
    @Option(help: "Layout of the input array: nchw or nhwc (default: the model's own input layout).")
    var layout: String?
    @Option(help: "Threads for the executor (default: all cores; 1 is strictly single-threaded).")
    var threads: Int?

    func validate() throws {
        if let layout, InputSpec.Layout(rawValue: layout) == nil {
            throw ValidationError("--layout must be nchw or nhwc, not '\(layout)'.")
        }
        if let threads, threads < 1 || threads > 256 {
            throw ValidationError("--threads must be between 1 and 256, not \(threads).")
        }
    }

    var inputLayout: InputSpec.Layout? { layout.flatMap(InputSpec.Layout.init(rawValue:)) }
    var threadCount: Int { threads ?? ProcessInfo.processInfo.activeProcessorCount }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the SIMD executor on an input array.")

    @Argument(help: "The model file.") var model: String
    @Option(help: "Input array (.npy, float32/float64/float16).") var input: String
    @Option(help: "Where to write the float32 output (.npy): [N, classes], [N, features] after a global pool, or [N, C, H, W] without one.") var output: String
    @OptionGroup var execution: ExecutionOptions
    @Option(help: "Time this many runs after one warm-up.") var `repeat`: Int = 1
    @Flag(help: "Print one JSON object on stdout.") var json = false

    func validate() throws {
        guard `repeat` >= 1 && `repeat` <= 100_000 else { throw ValidationError("--repeat must be between 1 and 100000.") }
    }

    func run() throws {
        let clock = ContinuousClock()
        var loadMs = 0.0, prepareMs = 0.0
        // The graph lives only inside this function: once the executor has packed its weights, the
        // imported copy is released before the workspace is allocated (peak memory).
        func prepare() throws -> (Executor, ModelInput) {
            let loadStart = clock.now
            let net = try loadModel(model)
            loadMs = milliseconds(clock.now - loadStart)
            let array = try CommandFailure.about(input) { try NPY.read(path: input) }
            let x = try CommandFailure.about(input) { try ModelInput(array, layout: execution.inputLayout, for: net) }
            let prepareStart = clock.now
            let executor = try CommandFailure.about(model) { try Executor(net, threads: execution.threadCount) }
            prepareMs = milliseconds(clock.now - prepareStart)
            return (executor, x)
        }
        let (executor, x) = try prepare()

        var y: [Float] = []
        var times: [Double] = []
        let runs = `repeat` > 1 ? `repeat` + 1 : 1
        for i in 0..<runs {
            let start = clock.now
            y = try CommandFailure.about(model) { try executor.run(x.values, batch: x.batch, height: x.height, width: x.width) }
            if runs == 1 || i > 0 { times.append(milliseconds(clock.now - start)) }
        }
        let shape = [x.batch] + (try CommandFailure.about(model) { try executor.outputShape(height: x.height, width: x.width) })
        try CommandFailure.about(output) { try NPY.write(NPY.Array(shape: shape, values: y), to: output) }
        let sorted = times.sorted()
        let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        if json {
            printJSON([
                "outputShape": shape,
                "loadMs": loadMs,
                "prepareMs": prepareMs,
                "runMs": ["median": median, "min": sorted[0]],
                "threads": executor.threads,
                "runs": times.count,
            ])
        } else {
            log("ran \(model) on \(x.batch) image\(x.batch == 1 ? "" : "s") of \(x.height)x\(x.width): median \(String(format: "%.2f", median)) ms, min \(String(format: "%.2f", sorted[0])) ms over \(times.count) run\(times.count == 1 ? "" : "s"), \(executor.threads) thread\(executor.threads == 1 ? "" : "s"); load \(String(format: "%.1f", loadMs)) ms, prepare \(String(format: "%.1f", prepareMs)) ms")
            print("wrote \(output): \(shape)")
        }
    }
}

func milliseconds(_ d: Duration) -> Double {
    let c = d.components
    return Double(c.seconds) * 1000 + Double(c.attoseconds) / 1e15
}
