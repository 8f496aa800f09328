import DenseKitKernels
import Testing

/// The weight arena: buffers carved in order, 64-byte aligned, each taking its footprint; a buffer
/// that does not fit is allocated on its own and still holds its values.
@Suite struct WeightArenaTests {
    @Test func carvesAlignedBuffersUntilFull() {
        // 1 float takes a 16-float minimum (64 bytes); 17 floats take two lines (128 bytes).
        #expect(WeightArena.footprint(floats: 1) == 64)
        #expect(WeightArena.footprint(floats: 17) == 128)
        #expect(WeightArena.footprint(floats: 0) == 64)
        let arena = WeightArena(bytes: 64 + 128 + 4096)
        #expect(arena.capacity == 4288)
        let first = AlignedBuffer([1, 2, 3], in: arena)
        let second = AlignedBuffer(uninitializedCount: 17, in: arena)
        let third = AlignedBuffer([Float](repeating: 7, count: 1024), in: arena)
        #expect(arena.unusedBytes == 0)
        // Consecutive in the arena: each starts where the one before it ends.
        #expect(UnsafeRawPointer(second.pointer) - UnsafeRawPointer(first.pointer) == 64)
        #expect(UnsafeRawPointer(third.pointer) - UnsafeRawPointer(second.pointer) == 128)
        for buffer in [first, second, third] { #expect(Int(bitPattern: buffer.pointer) % 64 == 0) }
        // Full: the next buffer is allocated on its own, outside the arena.
        let fourth = AlignedBuffer([4, 5], in: arena)
        let outside = UnsafeRawPointer(fourth.pointer) - UnsafeRawPointer(first.pointer)
        #expect(outside < 0 || outside >= 4288)
        #expect(Int(bitPattern: fourth.pointer) % 64 == 0)
        #expect(first.array == [1, 2, 3] && fourth.array == [4, 5])
        #expect(third.array == [Float](repeating: 7, count: 1024))
    }

    @Test func anEmptyArenaCarvesNothing() {
        let arena = WeightArena(bytes: 0)
        #expect(arena.capacity == 0 && arena.unusedBytes == 0)
        let buffer = AlignedBuffer([1, 2], in: arena)
        #expect(buffer.array == [1, 2])
    }
}
