import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Tensor regions of a `.dnk` file and the checksums its table stores for them (`LaneHash`), checked
/// on all cores: each core takes a run of consecutive regions (about an equal share of the bytes),
/// has the kernel map the run's pages in one call (MADV_POPULATE_READ, Linux 5.14; a hint, ignored
/// where it fails), and hashes them. Mapping pages and hashing are most of a load, and both scale
/// with the bytes read (a page fault per 64 KB, as reading an unpopulated mapping takes, cost more).
struct TensorChecksums: Sendable {
    struct Region: Sendable {
        let name: String, start: Int, end: Int, checksum: UInt64
    }

    var regions: [Region] = []

    /// Throws for the first region in the file whose bytes in `raw` do not hash to its checksum.
    func verify(_ raw: UnsafeRawBufferPointer) throws {
        guard !regions.isEmpty, let base = raw.baseAddress else { return }
        let sorted = regions.sorted { $0.start < $1.start }
        let cores = min(max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))), sorted.count)
        // Core c takes the regions that start in the c-th share of the bytes.
        let total = sorted.reduce(0) { $0 + $1.end - $1.start }
        var runs = [Range<Int>](repeating: 0..<0, count: cores), first = 0, done = 0
        for core in 0..<cores {
            var last = first
            while last < sorted.count && (core == cores - 1 || done < total * (core + 1) / cores) {
                done += sorted[last].end - sorted[last].start
                last += 1
            }
            runs[core] = first..<last
            first = last
        }
        let computed = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: sorted.count)
        computed.initialize(repeating: 0)
        defer { computed.deallocate() }
        let address = UInt(bitPattern: base), out = UInt(bitPattern: computed.baseAddress)
        let (all, shares, page) = (sorted, runs, Int(sysconf(Int32(_SC_PAGESIZE))))
        DispatchQueue.concurrentPerform(iterations: cores) { core in
            guard let p = UnsafeRawPointer(bitPattern: address), let results = UnsafeMutablePointer<UInt64>(bitPattern: out) else { return }
            var i = shares[core].lowerBound
            while i < shares[core].upperBound {
                // The stretch of regions that follow each other without a gap: one call maps it.
                var j = i + 1
                while j < shares[core].upperBound && all[j].start == all[j - 1].end { j += 1 }
                let from = (Int(address) + all[i].start) / page * page
                _ = madvise(UnsafeMutableRawPointer(bitPattern: from), Int(address) + all[j - 1].end - from, Self.populateRead)
                for r in i..<j {
                    results[r] = LaneHash.hash(UnsafeRawBufferPointer(start: p + all[r].start, count: all[r].end - all[r].start))
                }
                i = j
            }
        }
        if let bad = all.indices.first(where: { computed[$0] != all[$0].checksum }) {
            throw ImportError(.malformed, subject: "tensor '\(all[bad].name)'", problem: "checksum mismatch (corrupt data or padding)")
        }
    }

    /// Starts `verify` on other threads and returns at once; `Pending.wait` gives its outcome. The
    /// caller keeps `raw`'s memory alive and calls `wait` before it returns, whatever happens.
    func verifyInBackground(_ raw: UnsafeRawBufferPointer) -> Pending {
        let pending = Pending(), (address, count) = (UInt(bitPattern: raw.baseAddress), raw.count)
        DispatchQueue.global(qos: .userInitiated).async(group: pending.group) { [self] in
            let buffer = UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: address), count: count)
            do { try verify(buffer) } catch { pending.failure = error }
        }
        return pending
    }

    /// A `verifyInBackground` under way.
    final class Pending: @unchecked Sendable {
        let group = DispatchGroup()
        /// Written by the verifying thread before the group is left, read only after `wait`.
        var failure: Error?

        /// Waits for the checks; throws the first mismatch, as `verify` does.
        func wait() throws {
            group.wait()
            if let failure { throw failure }
        }
    }

    /// MADV_POPULATE_READ (linux/mman.h), which Glibc's headers do not all name.
    static let populateRead: Int32 = 22
}

/// Checksums a reader left for later: run once, when something first needs the tensors they cover
/// (`ExecutorCache.weightChecks`); every later call gives the same answer.
final class DeferredChecksums: @unchecked Sendable {
    private let checks: TensorChecksums
    private let file: MappedFile
    private let lock = NSLock()
    private var outcome: Result<Void, ImportError>?

    init(_ checks: TensorChecksums, in file: MappedFile) {
        self.checks = checks
        self.file = file
    }

    func verify() throws {
        lock.lock()
        defer { lock.unlock() }
        if outcome == nil {
            outcome = Result {
                try file.data.withUnsafeBytes { try checks.verify($0) }
            }.mapError { $0 as? ImportError ?? ImportError.malformed("\($0)") }
        }
        try outcome!.get()
    }
}
