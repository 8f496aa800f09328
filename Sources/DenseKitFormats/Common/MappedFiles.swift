import Foundation

/// The files this process has mapped (`FileMapping.map`), by address range, for a SIGBUS handler:
/// reading a mapped page past the end of a file that another process truncated raises SIGBUS, and
/// the handler asks `path(containing:)` which file it was. Lookups allocate nothing and take no lock,
/// as a signal handler must; entries are written under a lock and their paths never freed.
public enum MappedFiles {
    private struct Region {
        var start: UInt
        var end: UInt
        var path: UnsafeMutablePointer<CChar>?
    }

    private static let capacity = 256
    private nonisolated(unsafe) static let regions: UnsafeMutablePointer<Region> = {
        let slots = UnsafeMutablePointer<Region>.allocate(capacity: capacity)
        slots.initialize(repeating: Region(start: 0, end: 0, path: nil), count: capacity)
        return slots
    }()
    private static let lock = NSLock()

    /// Makes the table before a signal handler can read it (a first use allocates).
    public static func prepare() { _ = regions }

    static func record(_ base: UnsafeMutableRawPointer, count: Int, path: String) {
        lock.lock()
        defer { lock.unlock() }
        guard let free = (0..<capacity).first(where: { regions[$0].path == nil }) else { return }
        let start = UInt(bitPattern: base)
        regions[free].start = start
        regions[free].end = start + UInt(count)
        regions[free].path = strdup(path)
    }

    static func forget(_ base: UnsafeMutableRawPointer) {
        lock.lock()
        defer { lock.unlock() }
        for index in 0..<capacity where regions[index].path != nil && regions[index].start == UInt(bitPattern: base) {
            regions[index].path = nil
        }
    }

    /// The path of the mapped file whose pages hold `address`, or nil. Safe in a signal handler.
    public static func path(containing address: UInt) -> UnsafePointer<CChar>? {
        for index in 0..<capacity {
            let region = regions[index]
            if let path = region.path, address >= region.start, address < region.end { return UnsafePointer(path) }
        }
        return nil
    }
}
