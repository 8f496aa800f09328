/// A 64-byte aligned float buffer owned by its instance (freed in deinit), or borrowed from memory
/// that `owner` keeps alive (a mapped file's executor cache), which nothing writes.
public final class AlignedBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>
    private let owner: AnyObject?

    /// Allocates `count` floats set to zero.
    public convenience init(count: Int) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: 0, count: max(count, 16))
    }

    /// Allocates `count` floats for a caller that writes every one of them before anything reads them
    /// (weights packed once: a zero fill first would be a second pass over the memory).
    public init(uninitializedCount count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 16) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 16))
        owner = nil
    }

    /// `count` floats at `pointer` (64-byte aligned), kept alive by `owner`; never written or freed here.
    public init(borrowing pointer: UnsafePointer<Float>, count: Int, owner: AnyObject) {
        precondition(UInt(bitPattern: pointer) % 64 == 0, "AlignedBuffer: unaligned borrowed memory")
        self.count = count
        self.pointer = UnsafeMutablePointer(mutating: pointer)
        self.owner = owner
    }

    public convenience init(_ values: [Float]) {
        self.init(uninitializedCount: values.count)
        values.withUnsafeBufferPointer { pointer.initialize(from: $0.baseAddress!, count: values.count) }
    }

    deinit { if owner == nil { pointer.deallocate() } }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}
