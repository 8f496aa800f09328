import Foundation
import Synchronization

/// A fixed set of worker threads that run one parallel step at a time with low latency.
///
/// A DenseNet forward pass is several hundred short GEMMs (tens of microseconds each at 7x7), too
/// short for a dispatch queue's wake-up cost. Workers spin briefly between steps, then sleep on a
/// semaphore. A step's parts are claimed, not assigned: the calling thread and the workers each take
/// the next unclaimed part until none is left, so a thread that the machine slows down (a busy
/// sibling core, a preempted CPU) takes fewer parts instead of holding up the step.
public final class WorkerPool: @unchecked Sendable {
    public let threads: Int
    private let workers: [Worker]
    /// The current step's number, its part count and its next unclaimed part, in one value
    /// (step << 16 | parts << 8 | next), so that a claim is one compare-and-exchange.
    private let claims = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    private var job: ((Int) -> Void)?
    private var step = 0
    private let busy = NSLock()

    /// How long a worker spins for the next step before it sleeps.
    static let spinLimit = 200_000
    /// Parts per step at most.
    public static let maxParts = 255

    private final class Worker: @unchecked Sendable {
        let sleeping = Atomic<Bool>(false)
        let wake = DispatchSemaphore(value: 0)
    }

    private static let poolsLock = NSLock()
    nonisolated(unsafe) private static var pools: [Int: WorkerPool] = [:]

    /// The process-wide pool with `threads` threads (the caller counts as one).
    public static func shared(threads: Int) -> WorkerPool {
        poolsLock.lock()
        defer { poolsLock.unlock() }
        if let pool = pools[threads] { return pool }
        let pool = WorkerPool(threads: threads)
        pools[threads] = pool
        return pool
    }

    private init(threads: Int) {
        self.threads = max(1, threads)
        workers = (1..<max(1, threads)).map { _ in Worker() }
        for worker in workers {
            let thread = Thread { [unowned self] in self.loop(worker) }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Runs `body(i)` for i in 0..<parts on the pool's threads (the caller among them) and returns
    /// when all are done. Which thread runs a part is not fixed. Steps from different callers are serialized.
    public func run(parts: Int, _ body: (Int) -> Void) {
        precondition(parts <= Self.maxParts, "WorkerPool: \(parts) parts")
        if threads == 1 || parts <= 1 {
            for i in 0..<parts { body(i) }
            return
        }
        busy.lock()
        defer { busy.unlock() }
        withoutActuallyEscaping(body) { escapable in
            job = escapable
            step = (step + 1) & 0xFFFF_FFFF
            finished.store(0, ordering: .relaxed)
            claims.store(step << 16 | parts << 8, ordering: .sequentiallyConsistent)
            for worker in workers
            where worker.sleeping.compareExchange(expected: true, desired: false, ordering: .sequentiallyConsistent)
                .exchanged
            {
                worker.wake.signal()
            }
            work(step: step)
            while finished.load(ordering: .acquiring) < parts {}
            job = nil
        }
    }

    /// Claims and runs parts of `step` until it has none left.
    private func work(step: Int) {
        var state = claims.load(ordering: .acquiring)
        // A claim succeeds only while the step is unfinished (its part is unclaimed), so `job` is still its job.
        while state >> 16 == step && state & 0xFF < (state >> 8) & 0xFF {
            let (claimed, now) = claims.compareExchange(
                expected: state, desired: state + 1, ordering: .sequentiallyConsistent)
            if claimed {
                job?(state & 0xFF)
                finished.add(1, ordering: .releasing)
                state = claims.load(ordering: .acquiring)
            } else {
                state = now
            }
        }
    }

    /// Splits 0..<count into `parts` contiguous ranges (multiples of `granule`; by default one per
    /// thread) and runs them in parallel. The ranges' granules differ in number by one at most (25
    /// GEMM panels in 4 parts are 6, 6, 6 and 7, not 7, 7, 7 and 4, which left one of 2 threads
    /// 3 panels idle).
    public func parallelFor(_ count: Int, granule: Int = 1, parts: Int? = nil, _ body: (Range<Int>) -> Void) {
        let grain = max(granule, 1)
        let units = (count + grain - 1) / grain
        let partCount = min(parts ?? threads, units, Self.maxParts)
        if threads == 1 || partCount <= 1 {
            body(0..<count)
            return
        }
        run(parts: partCount) { i in
            let lo = i * units / partCount * grain
            let hi = min(count, (i + 1) * units / partCount * grain)
            if lo < hi { body(lo..<hi) }
        }
    }

    private func loop(_ worker: Worker) {
        var seen = 0
        while true {
            var spins = 0
            while claims.load(ordering: .acquiring) >> 16 == seen {
                spins += 1
                if spins < Self.spinLimit { continue }
                worker.sleeping.store(true, ordering: .sequentiallyConsistent)
                if claims.load(ordering: .sequentiallyConsistent) >> 16 == seen {
                    worker.wake.wait()
                } else if !worker.sleeping.compareExchange(
                    expected: true, desired: false, ordering: .sequentiallyConsistent
                ).exchanged {
                    worker.wake.wait()  // the caller took the flag and signals: consume it
                }
                spins = 0
            }
            seen = claims.load(ordering: .acquiring) >> 16
            work(step: seen)
        }
    }
}
