/// XXH64 (Yann Collet's xxHash, 64-bit variant, seed 0), the checksum of every region of a `.dnk` file.
/// Implemented from the published algorithm description; fast enough to check a 32 MB model in a few ms.
public enum XXH64 {
    package static let p1: UInt64 = 0x9E37_79B1_85EB_CA87
    package static let p2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    package static let p3: UInt64 = 0x1656_67B1_9E37_79F9
    package static let p4: UInt64 = 0x85EB_CA77_C2B2_AE63
    package static let p5: UInt64 = 0x27D4_EB2F_1656_67C5

    @inline(__always) package static func rotl(_ value: UInt64, _ bits: UInt64) -> UInt64 {
        (value << bits) | (value >> (64 - bits))
    }
    @inline(__always) package static func round(_ acc: UInt64, _ input: UInt64) -> UInt64 {
        rotl(acc &+ input &* p2, 31) &* p1
    }
    @inline(__always) package static func merge(_ acc: UInt64, _ lane: UInt64) -> UInt64 {
        (acc ^ round(0, lane)) &* p1 &+ p4
    }

    public static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let length = bytes.count
        var offset = 0
        var state: UInt64
        if length >= 32, let base = bytes.baseAddress {
            var v1 = seed &+ p1 &+ p2
            var v2 = seed &+ p2
            var v3 = seed
            var v4 = seed &- p1
            while offset + 32 <= length {
                v1 = round(v1, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
                v2 = round(v2, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self)))
                v3 = round(v3, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset + 16, as: UInt64.self)))
                v4 = round(v4, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset + 24, as: UInt64.self)))
                offset += 32
            }
            state = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
            state = merge(state, v1)
            state = merge(state, v2)
            state = merge(state, v3)
            state = merge(state, v4)
        } else {
            state = seed &+ p5
        }
        state = state &+ UInt64(length)
        guard let base = bytes.baseAddress else { return avalanche(state) }
        while offset + 8 <= length {
            state ^= round(0, UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
            state = rotl(state, 27) &* p1 &+ p4
            offset += 8
        }
        if offset + 4 <= length {
            state ^= UInt64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))) &* p1
            state = rotl(state, 23) &* p2 &+ p3
            offset += 4
        }
        while offset < length {
            state ^= UInt64(base.load(fromByteOffset: offset, as: UInt8.self)) &* p5
            state = rotl(state, 11) &* p1
            offset += 1
        }
        return avalanche(state)
    }

    @inline(__always) package static func avalanche(_ value: UInt64) -> UInt64 {
        var mixed = value
        mixed ^= mixed >> 33
        mixed = mixed &* p2
        mixed ^= mixed >> 29
        mixed = mixed &* p3
        mixed ^= mixed >> 32
        return mixed
    }
}
