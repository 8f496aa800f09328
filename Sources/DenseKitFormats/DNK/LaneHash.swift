import DenseKitKernels

/// The checksum of a `.dnk` file's tensor data: fast enough that validating every byte of a model
/// costs about a millisecond.
///
/// Four independent lanes of SIMD8<UInt64> each absorb 64-byte blocks in turn as
/// state = (state XOR block) * P (P odd, so each step is a bijection of the state: changing any one
/// block always changes the final state). The lanes, the bytes past the last whole 256-byte group
/// (hashed with XXH64) and the length are then combined and finished with XXH64's avalanche.
/// Reading the bytes from memory is most of the time: each group prefetches the one 2 KB ahead
/// (measured faster on 1 and 2 cores: docs/performance.md).
public enum LaneHash {
    package static let multiplier: UInt64 = 0x9E37_79B1_85EB_CA87

    public static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        let length = bytes.count
        var s0 = SIMD8<UInt64>(repeating: 1)
        var s1 = SIMD8<UInt64>(repeating: 2)
        var s2 = SIMD8<UInt64>(repeating: 3)
        var s3 = SIMD8<UInt64>(repeating: 4)
        let multipliers = SIMD8<UInt64>(repeating: multiplier)
        var offset = 0
        if let base = bytes.baseAddress {
            while offset + 256 <= length {
                Prefetch.l2(base + offset + 2048, bytes: 256)  // past the end is harmless: a prefetch never faults
                s0 = (s0 ^ base.loadUnaligned(fromByteOffset: offset, as: SIMD8<UInt64>.self)) &* multipliers
                s1 = (s1 ^ base.loadUnaligned(fromByteOffset: offset + 64, as: SIMD8<UInt64>.self)) &* multipliers
                s2 = (s2 ^ base.loadUnaligned(fromByteOffset: offset + 128, as: SIMD8<UInt64>.self)) &* multipliers
                s3 = (s3 ^ base.loadUnaligned(fromByteOffset: offset + 192, as: SIMD8<UInt64>.self)) &* multipliers
                offset += 256
            }
        }
        var state = XXH64.hash(UnsafeRawBufferPointer(rebasing: bytes[offset..<length])) &+ UInt64(length) &* XXH64.p5
        for lanes in [s0, s1, s2, s3] {
            for lane in 0..<8 { state = XXH64.merge(state, lanes[lane] ^ (lanes[lane] >> 29)) }
        }
        return XXH64.avalanche(state)
    }
}
