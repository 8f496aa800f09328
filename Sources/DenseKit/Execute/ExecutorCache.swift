import DenseKitKernels
import Foundation

/// The executor's prepared buffers as a `.dnk` stores them (schemas/dnk-format.md, `executorCache`):
/// weights packed for the GEMM, BatchNorms folded, Winograd filters transformed, each in a tensor
/// `cache:<name>` under the name `ExecutionPlan` gives it. An executor made with the cache takes each
/// buffer from the mapped file (no copy, no arithmetic) where the cache holds it at the size the graph
/// calls for, and makes the others as usual, so a cache that lacks a buffer (the `--exact` packing,
/// say) or comes from another format version costs time, never correctness.
/// The buffers are the writer's own computation from the file's weights; both are checksummed. A
/// reader asked to may leave the checks of the weights the buffers stand in for to the executor
/// (`weightChecks`), which runs them before it makes any buffer from those weights, and the buffers'
/// own checks running (`bufferChecks`), which the executor joins before it is ready.
public final class ExecutorCache: @unchecked Sendable {
    /// Changes whenever a buffer's layout or contents would change (packing, folding, transforms,
    /// which blocks use Winograd, how the buffers are stored); a file with another format's cache is
    /// read without it.
    public static let format = "densekit-plan-3"
    /// What a buffer's tensor name starts with.
    static let tensorPrefix = "cache:"

    let owner: AnyObject
    /// Each buffer's floats (64-byte aligned), in memory that `owner` keeps.
    let entries: [String: UnsafeBufferPointer<Float>]
    /// The checksums of the file's weight tensors, when the reader left them to the executor.
    let weightChecks: DeferredChecksums?
    /// The checksums of the buffers (and of any other tensor but the weights), when the reader left
    /// them running; nil when it finished them.
    let bufferChecks: DeferredChecksums?

    /// `entries` in memory that `owner` keeps, checked against the file (`DNKReader`) or being checked.
    init(entries: [String: UnsafeBufferPointer<Float>], owner: AnyObject, weightChecks: DeferredChecksums?, bufferChecks: DeferredChecksums?) {
        self.entries = entries
        self.owner = owner
        self.weightChecks = weightChecks
        self.bufferChecks = bufferChecks
    }

    public var buffers: Int { entries.count }
    /// Floats in all the buffers.
    public var count: Int { entries.values.reduce(0) { $0 + $1.count } }

    /// The buffer `name`, when the cache holds it with exactly `count` floats.
    func buffer(_ name: String, count: Int) -> AlignedBuffer? {
        guard let e = entries[name], e.count == count, let base = e.baseAddress else { return nil }
        return AlignedBuffer(borrowing: base, count: count, owner: owner)
    }

    /// The buffers an executor prepares for `net` in `ConvolutionMode.default`, by name, sorted.
    static func encode(_ net: DenseNet) throws -> [(name: String, values: [Float])] {
        let plan = try ExecutionPlan(net, mode: .default)
        return plan.buffers.named.sorted { $0.key < $1.key }.map { name, buffer in
            (name, Array(UnsafeBufferPointer(start: buffer.pointer, count: buffer.count)))
        }
    }
}

/// Where an `ExecutionPlan` gets each of its buffers: from a cache that holds it at the right size,
/// else made from the graph's weights. Every buffer is kept under its name, for the `.dnk` writer.
final class PlanBuffers: @unchecked Sendable {
    let cache: ExecutorCache?
    private let lock = NSLock()
    private(set) var named: [String: AlignedBuffer] = [:]
    /// How many of the buffers came from the cache.
    private(set) var cached = 0

    init(cache: ExecutorCache?) { self.cache = cache }

    func buffer(_ name: String, count: Int, make: () -> AlignedBuffer) -> AlignedBuffer {
        let hit = cache?.buffer(name, count: count)
        let b = hit ?? make()
        precondition(b.count == count, "plan buffer '\(name)': \(b.count) floats, expected \(count)")
        lock.lock()
        defer { lock.unlock() }
        precondition(named[name] == nil, "plan buffer '\(name)' made twice")
        named[name] = b
        if hit != nil { cached += 1 }
        return b
    }

    func buffer(_ name: String, _ values: @autoclosure () -> [Float], count: Int) -> AlignedBuffer {
        buffer(name, count: count) { AlignedBuffer(values()) }
    }
}
