import DenseKitKernels
import Foundation
import Synchronization
import Testing

/// The worker pool's steps: every part runs exactly once, whichever thread claims it, and
/// `parallelFor` covers its range exactly, in granule multiples.
@Suite struct WorkerPoolTests {
    @Test(
        arguments: [
            (1, 1, 1, nil), (100, 1, 2, nil), (3136, 32, 2, 4), (100, 32, 2, 4), (7, 8, 2, 4), (288, 72, 2, nil),
            (1000, 1, 2, 255), (5, 1, 2, 9), (784, 32, 2, 4),
        ] as [(Int, Int, Int, Int?)])
    func parallelForCoversItsRangeOnce(_ split: (count: Int, granule: Int, threads: Int, parts: Int?)) {
        let hits = Mutex([Int](repeating: 0, count: split.count))
        let misaligned = Mutex(0)
        let granules = Mutex([Int]())
        WorkerPool.shared(threads: split.threads).parallelFor(split.count, granule: split.granule, parts: split.parts) {
            range in
            if range.lowerBound % split.granule != 0 { misaligned.withLock { $0 += 1 } }
            hits.withLock { for i in range { $0[i] += 1 } }
            granules.withLock { $0.append((range.count + split.granule - 1) / split.granule) }
        }
        #expect(hits.withLock { $0.allSatisfy { $0 == 1 } }, "\(split)")
        #expect(misaligned.withLock { $0 } == 0, "\(split)")
        // Balanced: the parts' granules differ by one at most.
        let sizes = granules.withLock { $0 }
        #expect(sizes.max()! - sizes.min()! <= 1, "\(split): granules per part \(sizes.sorted())")
    }

    @Test func manyStepsEachPartOnce() {
        let pool = WorkerPool.shared(threads: 2)
        let runs = Mutex([Int](repeating: 0, count: 7))
        for step in 0..<3000 {
            pool.run(parts: 2 + step % 6) { i in runs.withLock { $0[i] += 1 } }
        }
        // Part i runs in the steps with more than i parts: 3000 steps cycle through 2...7 parts.
        let expected = (0..<7).map { i in (0..<3000).filter { 2 + $0 % 6 > i }.count }
        #expect(runs.withLock { $0 } == expected)
    }

    @Test func aSlowPartDoesNotHoldTheOthers() {
        // Part 0 sleeps: the other parts are claimed by whichever thread is free, and each runs once.
        let runs = Mutex([Int](repeating: 0, count: 8))
        WorkerPool.shared(threads: 2).run(parts: 8) { i in
            if i == 0 { Thread.sleep(forTimeInterval: 0.05) }
            runs.withLock { $0[i] += 1 }
        }
        #expect(runs.withLock { $0 } == [Int](repeating: 1, count: 8))
    }
}
