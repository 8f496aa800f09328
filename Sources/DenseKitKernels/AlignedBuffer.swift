/// A 64-byte aligned float buffer: carved from a `WeightArena` (which it keeps alive), or allocated
/// on its own and freed in deinit.
public final class AlignedBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>
    /// Where the floats live; nil when they were allocated for this buffer alone.
    private let arena: WeightArena?

    /// Allocates `count` floats set to zero.
    public convenience init(count: Int) {
        self.init(uninitializedCount: count)
        pointer.initialize(repeating: 0, count: max(count, 16))
    }

    /// Allocates `count` floats for a caller that writes every one of them before anything reads them
    /// (weights packed once: a zero fill first would be a second pass over the memory), in `arena`
    /// when it has room.
    public init(uninitializedCount count: Int, in arena: WeightArena? = nil) {
        self.count = count
        if let carved = arena?.allocate(floats: count) {
            pointer = carved
            self.arena = arena
        } else {
            let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 16) * 4, alignment: 64)
            pointer = raw.bindMemory(to: Float.self, capacity: max(count, 16))
            self.arena = nil
        }
    }

    /// A copy of `values` (an array, or floats read in place from a mapped file).
    public convenience init(_ values: some Collection<Float>, in arena: WeightArena? = nil) {
        self.init(uninitializedCount: values.count, in: arena)
        _ = buffer.initialize(from: values)
    }

    deinit {
        if arena == nil { pointer.deallocate() }
    }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}
