import DenseKitGraph
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Tensor regions of a `.dnk` file and the checksums its table stores for them (`LaneHash`), checked
/// on all cores. The regions are a shared queue, largest first: each core takes the next one and
/// hashes it, which faults its pages in as it reads them. Reading the bytes from memory, not the
/// hashing, is most of the time: so the checks start as soon as the reader knows the regions
/// (`start`), and the reader joins in when its own work is done (`Verification.finish`). Asking the
/// kernel to map each region up front (MADV_POPULATE_READ) was slower: it holds the process's
/// memory-map lock, which stalled the reader's own work (the figures: docs/performance.md).
package struct TensorChecksums: Sendable {
    /// A tensor's bytes, `entry` its index in the file's table.
    package struct Region: Sendable {
        package let entry: Int, start: Int, end: Int, checksum: UInt64
    }

    package var regions: [Region] = []
    /// A region's tensor name, for the error (made only then).
    package let name: @Sendable (_ entry: Int) -> String

    /// Starts the checks on the other cores and returns at once. `owner` keeps `raw`'s memory alive
    /// for as long as the checks run (or the caller does); `finish` is called before anything reads
    /// the regions' bytes.
    package func start(_ raw: UnsafeRawBufferPointer, keeping owner: AnyObject?) -> Verification {
        Verification(regions.sorted { ($0.end - $0.start, $1.start) > ($1.end - $1.start, $0.start) }, name, raw, owner)
    }

    /// Checks under way: helper threads take regions from the queue until it is empty.
    package final class Verification: @unchecked Sendable {
        private let regions: [Region]
        private let name: @Sendable (Int) -> String
        private let base: UnsafeRawPointer?
        /// Keeps `base`'s memory while helpers may still read it.
        private let owner: AnyObject?
        private let next = Atomic<Int>(0)
        /// Each region's hash, written by the thread that took it, read after all have finished.
        private let computed: UnsafeMutableBufferPointer<UInt64>
        private let helpers = DispatchGroup()

        fileprivate init(
            _ regions: [Region], _ name: @escaping @Sendable (Int) -> String, _ raw: UnsafeRawBufferPointer,
            _ owner: AnyObject?
        ) {
            self.regions = regions
            self.name = name
            base = raw.baseAddress
            self.owner = owner
            computed = .allocate(capacity: regions.count)
            computed.initialize(repeating: 0)
            let cores = min(max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))), regions.count)
            for _ in 1..<max(cores, 1) {
                DispatchQueue.global(qos: .userInitiated).async(group: helpers) { self.work() }
            }
        }

        deinit { computed.deallocate() }

        private func work() {
            guard let base else { return }
            while case let index = next.wrappingAdd(1, ordering: .relaxed).oldValue, index < regions.count {
                let region = regions[index]
                computed[index] = LaneHash.hash(
                    UnsafeRawBufferPointer(start: base + region.start, count: region.end - region.start))
            }
        }

        /// Checks on this thread too until every region is checked; throws for the first region in
        /// the file whose bytes do not hash to its checksum. Every call gives the same answer.
        package func finish() throws {
            work()
            helpers.wait()
            if let bad = regions.indices.filter({ computed[$0] != regions[$0].checksum }).min(by: {
                regions[$0].start < regions[$1].start
            }) {
                throw ImportError.malformed(
                    .tensor(name(regions[bad].entry)), problem: "checksum mismatch (corrupt data or padding)")
            }
        }
    }
}
