import DenseKitKernels
import Foundation

/// The executor's prepared buffers as a `.dnk` stores them (its `executor.cache` tensor and the
/// metadata's `executorCache` manifest; schemas/dnk-format.md): weights packed for the GEMM, BatchNorms
/// folded, Winograd filters transformed, each under the name `ExecutionPlan` gives it. An executor made
/// with the cache takes each buffer from the mapped file (no copy, no arithmetic) where the cache holds
/// it at the size the graph calls for, and makes the others as usual, so a cache that lacks a buffer
/// (the `--exact` packing, say) or comes from another format version costs time, never correctness.
/// The buffers are the writer's own computation from the file's weights; both are checksummed.
public final class ExecutorCache: @unchecked Sendable {
    /// Changes whenever a buffer's layout or contents would change (packing, folding, transforms,
    /// which blocks use Winograd); a file with another format's cache is read without it.
    public static let format = "densekit-plan-1"
    /// The name of the tensor that holds the buffers.
    static let tensorName = "executor.cache"

    let base: UnsafePointer<Float>
    let owner: AnyObject
    /// Each buffer's first float and float count in the cache.
    let entries: [String: (offset: Int, count: Int)]
    /// Floats in the cache.
    public let count: Int

    /// `count` floats at `base` (64-byte aligned) kept alive by `owner`, with a manifest already
    /// checked against them (`DNKReader`).
    init(base: UnsafePointer<Float>, count: Int, owner: AnyObject, entries: [String: (offset: Int, count: Int)]) {
        self.base = base
        self.count = count
        self.owner = owner
        self.entries = entries
    }

    public var buffers: Int { entries.count }

    /// The buffer `name`, when the cache holds it with exactly `count` floats.
    func buffer(_ name: String, count: Int) -> AlignedBuffer? {
        guard let e = entries[name], e.count == count else { return nil }
        return AlignedBuffer(borrowing: base + e.offset, count: count, owner: owner)
    }

    /// The buffers an executor prepares for `net` in `ConvolutionMode.default`, laid out for a file:
    /// the floats (each buffer from a multiple of 16, zeros between) and the manifest.
    static func encode(_ net: DenseNet) throws -> (values: [Float], manifest: [String: [Int]]) {
        let plan = try ExecutionPlan(net, mode: .default)
        var values: [Float] = [], manifest: [String: [Int]] = [:]
        for (name, buffer) in plan.buffers.named.sorted(by: { $0.key < $1.key }) {
            manifest[name] = [values.count, buffer.count]
            values += UnsafeBufferPointer(start: buffer.pointer, count: buffer.count)
            values += [Float](repeating: 0, count: (16 - values.count % 16) % 16)
        }
        return (values, manifest)
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
