/// C = A * B of integers (the integer executor's codes less their zero points), computed exactly on the float
/// `GEMM`: a float32 holds every integer up to 2^24, so a product whose terms' magnitudes sum to at most 2^24 has
/// every partial sum exact, in any order. K is cut into chunks short enough for that bound (from the largest |a|
/// and the largest |b| the product may see), each chunk's float result converted to int32 and the chunks summed in
/// int32: the result is the int32 accumulation's, bit for bit.
///
/// Why not an int8 kernel: Swift reaches AVX-512 VNNI (`vpdpbusd`) and `vpmaddwd` only through code the compiler
/// chooses, and it does not choose them from SIMD code (it multiplies int32 lanes with `vpmulld`); the float GEMM
/// is the fastest exact kernel available in plain Swift (the figures: docs/performance.md).
public enum ExactIntegerGEMM {
    /// The largest integer up to which float32 holds every integer.
    static let exactLimit = 1 << 24

    /// A, packed for the float GEMM in chunks of K that keep every product with a B of magnitude at most `maxB`
    /// exact. Prepared once per layer.
    public struct Weights: @unchecked Sendable {
        public let rows: Int
        public let k: Int
        let chunks: [(k0: Int, packed: PackedMatrix)]

        /// `a`: M x K row-major integers; `maxB`: the largest |b| the products will see (255 for 8-bit codes less
        /// a zero point in their range).
        public init(_ a: [Int32], rows: Int, k: Int, maxB: Int) {
            self.rows = rows
            self.k = k
            let maxA = a.reduce(0) { max($0, Int($1.magnitude)) }
            let step = maxA * maxB == 0 ? max(k, 1) : max(1, min(k, exactLimit / (maxA * maxB)))
            var chunks: [(Int, PackedMatrix)] = []
            var k0 = 0
            while k0 < k {
                let count = min(step, k - k0)
                var block = [Float](repeating: 0, count: rows * count)
                for row in 0..<rows {
                    for p in 0..<count { block[row * count + p] = Float(a[row * k + k0 + p]) }
                }
                chunks.append((k0, PackedMatrix(rows: rows, cols: count, values: block)))
                k0 += count
            }
            self.chunks = chunks
        }
    }

    /// C (M x N, row-major) = A * B, B (K x N, row-major) holding integers of magnitude at most the `maxB` that
    /// `a` was prepared for.
    public static func multiply(_ a: Weights, _ b: UnsafePointer<Float>, n: Int) -> [Int32] {
        var c = [Int32](repeating: 0, count: a.rows * n)
        guard n > 0, a.rows > 0 else { return c }
        var partial = [Float](repeating: 0, count: a.rows * n)
        for (k0, packed) in a.chunks {
            partial.withUnsafeMutableBufferPointer { target in
                GEMM.multiply(packed, b + k0 * n, ldb: n, n: n, target.baseAddress!, ldc: n)
            }
            c.withUnsafeMutableBufferPointer { c in
                partial.withUnsafeBufferPointer { partial in
                    // Saturated, so that a product past int32 (weights wider than 8 bits, which no quantiser
                    // writes) cannot trap.
                    for i in 0..<c.count { c[i] &+= Int32(min(max(partial[i], -0x1p31), 0x1.fffffep30)) }
                }
            }
        }
        return c
    }
}
