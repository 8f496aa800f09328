import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One anonymous mapping that a model's packed weights are carved from as they are packed.
///
/// Packing writes tens of megabytes of fresh memory once, and fresh memory costs a page fault per page
/// first touched: with 4 KiB pages, most of a plan's making. The mapping is aligned to 2 MiB and advised
/// for transparent huge pages (Linux's `madvise` mode), so where the kernel allows it one fault brings
/// 512 pages. (Committing it all up front, `MADV_POPULATE_WRITE`, was slower and far less steady than
/// faulting the pages in as the packing threads write them: docs/performance.md.) Its size is the sum
/// of the buffers' `footprint`s, which the caller computes before packing; a buffer that does not fit
/// is allocated on its own (`AlignedBuffer` falls back to that). The mapping is unmapped when the last
/// buffer carved from it is freed.
public final class WeightArena: @unchecked Sendable {
    static let alignment = 64
    static let hugePage = 2 << 20
    private let mapping: UnsafeMutableRawPointer?
    private let mappedBytes: Int
    private let base: UnsafeMutableRawPointer?
    public let capacity: Int
    private let used = Atomic<Int>(0)

    /// Maps `bytes` (nothing when the mapping fails: every buffer is then allocated on its own).
    public init(bytes: Int) {
        let capacity = max(bytes, 0)
        let rounded = (capacity + Self.hugePage - 1) / Self.hugePage * Self.hugePage
        let mappedBytes = rounded + Self.hugePage
        #if os(Linux)
            let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
        #else
            let flags = MAP_PRIVATE | MAP_ANON
        #endif
        let address = capacity > 0 ? mmap(nil, mappedBytes, PROT_READ | PROT_WRITE, flags, -1, 0) : nil
        guard let address, address != MAP_FAILED else {
            (mapping, self.mappedBytes, base, self.capacity) = (nil, 0, nil, 0)
            return
        }
        let aligned = (Int(bitPattern: address) + Self.hugePage - 1) / Self.hugePage * Self.hugePage
        let start = UnsafeMutableRawPointer(bitPattern: aligned)!
        #if os(Linux)
            // Advice only: without transparent huge pages the pages are ordinary ones.
            _ = madvise(start, rounded, MADV_HUGEPAGE)
        #endif
        (mapping, self.mappedBytes, base, self.capacity) = (address, mappedBytes, start, capacity)
    }

    deinit {
        if let mapping { munmap(mapping, mappedBytes) }
    }

    /// The bytes a buffer of `count` floats takes in an arena: at least 16 floats, in whole 64-byte lines.
    public static func footprint(floats count: Int) -> Int {
        (max(count, 16) * 4 + alignment - 1) / alignment * alignment
    }

    /// Bytes not carved yet (0 once every buffer the size was computed for is packed).
    public var unusedBytes: Int { max(capacity - used.load(ordering: .relaxed), 0) }

    /// Room for `count` floats, 64-byte aligned; nil when the arena has not that much left.
    func allocate(floats count: Int) -> UnsafeMutablePointer<Float>? {
        guard let base, count >= 0, count <= capacity / 4 else { return nil }
        let bytes = Self.footprint(floats: count)
        let start = used.wrappingAdd(bytes, ordering: .relaxed).oldValue
        guard start <= capacity - bytes else { return nil }
        return (base + start).bindMemory(to: Float.self, capacity: max(count, 16))
    }
}
