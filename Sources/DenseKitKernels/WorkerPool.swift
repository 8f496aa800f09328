import Foundation
import Synchronization

/// A fixed set of worker threads that run one parallel step at a time with low latency.
///
/// A DenseNet forward pass is several hundred short GEMMs (tens of microseconds each at 7x7), too
/// short for a dispatch queue's wake-up cost. Workers spin briefly between steps, then sleep on a
/// semaphore; the calling thread runs part 0 itself and spins until the others are done.
public final class WorkerPool: @unchecked Sendable {
    public let threads: Int
    private let workers: [Worker]
    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private var job: ((Int) -> Void)?
    private let busy = NSLock()

    /// How long a worker spins for the next step before it sleeps.
    static let spinLimit = 200_000

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
        for (i, worker) in workers.enumerated() {
            let thread = Thread { [unowned self] in self.loop(worker, index: i + 1) }
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Runs `body(i)` for i in 0..<threads, part 0 on the calling thread; returns when all are done.
    /// Steps from different callers are serialized.
    public func run(_ body: (Int) -> Void) {
        if threads == 1 {
            body(0)
            return
        }
        busy.lock()
        defer { busy.unlock() }
        withoutActuallyEscaping(body) { escapable in
            job = escapable
            pending.store(threads - 1, ordering: .sequentiallyConsistent)
            generation.add(1, ordering: .sequentiallyConsistent)
            for worker in workers where worker.sleeping.compareExchange(expected: true, desired: false, ordering: .sequentiallyConsistent).exchanged {
                worker.wake.signal()
            }
            escapable(0)
            while pending.load(ordering: .acquiring) > 0 { }
            job = nil
        }
    }

    /// Splits 0..<count into `threads` contiguous ranges (multiples of `granule`) and runs them in parallel.
    public func parallelFor(_ count: Int, granule: Int = 1, _ body: (Range<Int>) -> Void) {
        let parts = min(threads, max(1, count / max(granule, 1)))
        if parts <= 1 {
            body(0..<count)
            return
        }
        let per = ((count + parts - 1) / parts + granule - 1) / granule * granule
        run { i in
            let lo = min(count, i * per), hi = min(count, lo + per)
            if lo < hi { body(lo..<hi) }
        }
    }

    private func loop(_ worker: Worker, index: Int) {
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < Self.spinLimit { continue }
                worker.sleeping.store(true, ordering: .sequentiallyConsistent)
                if generation.load(ordering: .sequentiallyConsistent) == seen {
                    worker.wake.wait()
                } else if !worker.sleeping.compareExchange(expected: true, desired: false, ordering: .sequentiallyConsistent).exchanged {
                    worker.wake.wait()  // the caller took the flag and signals: consume it
                }
                spins = 0
            }
            seen = generation.load(ordering: .acquiring)
            job?(index)
            pending.subtract(1, ordering: .releasing)
        }
    }
}
