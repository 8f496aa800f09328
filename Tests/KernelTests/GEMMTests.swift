import DenseKitKernels
import TestSupport
import Testing

/// The SIMD GEMM against the reference matrix product, on shapes that exercise every edge:
/// rows not a multiple of 8, columns not a multiple of 16, K across the 256 and 512 blocks (`GEMM.kc`), bias, ReLU,
/// threads.
@Suite struct GEMMTests {
    static let shapes: [(m: Int, k: Int, n: Int)] = [
        (1, 1, 1), (8, 16, 16), (7, 5, 3), (13, 37, 29), (32, 300, 49), (129, 257, 50), (20, 9, 784), (3, 513, 17),
        (128, 640, 196), (17, 300, 40), (9, 33, 37),  // panels ending in 4, 8 and 5 columns (thin tiles)
        (11, 70, 56), (8, 260, 52), (16, 20, 45),  // 24, 20 and 13 columns (a half tile, then a thin one)
    ]

    @Test(arguments: shapes)
    func matchesReference(_ shape: (m: Int, k: Int, n: Int)) {
        var rng = SeededRandom(UInt64(shape.m * 1000 + shape.k * 10 + shape.n))
        let matrixA = rng.floats(shape.m * shape.k)
        let matrixB = rng.floats(shape.k * shape.n)
        let bias = rng.floats(shape.m)
        let expected = Reference.matmul(matrixA, matrixB, m: shape.m, k: shape.k, n: shape.n)
        let packed = PackedMatrix(rows: shape.m, cols: shape.k, values: matrixA)
        for threads in [1, 2] {
            for (useBias, relu) in [(false, false), (true, false), (true, true)] {
                var matrixC = [Float](repeating: .nan, count: shape.m * shape.n)
                matrixB.withUnsafeBufferPointer { bp in
                    bias.withUnsafeBufferPointer { biasp in
                        matrixC.withUnsafeMutableBufferPointer { cp in
                            GEMM.multiply(
                                packed, bp.baseAddress!, ldb: shape.n, n: shape.n, cp.baseAddress!, ldc: shape.n,
                                bias: useBias ? biasp.baseAddress! : nil, relu: relu, threads: threads)
                        }
                    }
                }
                var want = expected
                for i in 0..<shape.m {
                    for column in 0..<shape.n {
                        var wanted = want[i * shape.n + column] + (useBias ? bias[i] : 0)
                        if relu { wanted = max(0, wanted) }
                        want[i * shape.n + column] = wanted
                    }
                }
                let worst =
                    matrixC.allSatisfy(\.isFinite) ? zip(matrixC, want).map { abs($0 - $1) }.max() ?? 0 : .infinity
                #expect(
                    worst <= 1e-4 * Float(shape.k).squareRoot(),
                    "m\(shape.m) k\(shape.k) n\(shape.n) threads \(threads) bias \(useBias) relu \(relu): \(worst)")
            }
        }
    }

    @Test func writesOnlyItsColumnsWhenLdcIsWider() {
        // C is a 3 x 5 window of a 3 x 9 matrix: the other columns must stay untouched.
        let matrixA: [Float] = [1, 2, 3, 4, 5, 6]
        let matrixB: [Float] = (0..<10).map(Float.init)
        var matrixC = [Float](repeating: -7, count: 27)
        let packed = PackedMatrix(rows: 3, cols: 2, values: matrixA)
        matrixB.withUnsafeBufferPointer { bp in
            matrixC.withUnsafeMutableBufferPointer {
                GEMM.multiply(packed, bp.baseAddress!, ldb: 5, n: 5, $0.baseAddress!, ldc: 9)
            }
        }
        let want = Reference.matmul(matrixA, matrixB, m: 3, k: 2, n: 5)
        for i in 0..<3 {
            #expect(Array(matrixC[(i * 9)..<(i * 9 + 5)]) == Array(want[(i * 5)..<(i * 5 + 5)]))
            #expect(matrixC[(i * 9 + 5)..<(i * 9 + 9)].allSatisfy { $0 == -7 })
        }
    }
}

/// Panel-major operands: a GEMM writes C as 32-column panels and a second GEMM reads that as its B
/// in place. Lanes of the last panel past N hold NaN: they must be neither written nor let through.
@Suite struct PanelMajorTests {
    @Test(arguments: [(128, 96, 32, 3136), (16, 40, 9, 196), (24, 300, 20, 49), (8, 7, 5, 5)])
    func chainedThroughPanels(_ shape: (m: Int, k: Int, m2: Int, n: Int)) {
        var rng = SeededRandom(UInt64(shape.m * 7 + shape.n))
        let matrixA = rng.floats(shape.m * shape.k)
        let matrixB = rng.floats(shape.k * shape.n)
        let a2 = rng.floats(shape.m2 * shape.m)
        let bias = rng.floats(shape.m)
        var hidden = Reference.matmul(matrixA, matrixB, m: shape.m, k: shape.k, n: shape.n)
        for i in hidden.indices { hidden[i] = max(0, hidden[i] + bias[i / shape.n]) }
        let want = Reference.matmul(a2, hidden, m: shape.m2, k: shape.m, n: shape.n)
        let (first, second) = (
            PackedMatrix(rows: shape.m, cols: shape.k, values: matrixA),
            PackedMatrix(rows: shape.m2, cols: shape.m, values: a2)
        )
        let panels = (shape.n + 31) / 32
        let panelStride = shape.m * 32
        for threads in [1, 2] {
            var matrixC = [Float](repeating: .nan, count: panels * panelStride)
            var hiddenOutput = [Float](repeating: .nan, count: shape.m2 * shape.n)
            matrixB.withUnsafeBufferPointer { bp in
                bias.withUnsafeBufferPointer { biasp in
                    matrixC.withUnsafeMutableBufferPointer { cp in
                        GEMM.multiply(
                            first, bp.baseAddress!, ldb: shape.n, n: shape.n, cp.baseAddress!, ldc: 32,
                            cPanelStride: panelStride,
                            bias: biasp.baseAddress!, relu: true, threads: threads)
                        hiddenOutput.withUnsafeMutableBufferPointer { yp in
                            GEMM.multiply(
                                second,
                                GEMM.segments(
                                    UnsafePointer(cp.baseAddress!), ldb: 32, k: shape.m, panelStride: panelStride),
                                n: shape.n, yp.baseAddress!, ldc: shape.n, threads: threads)
                        }
                    }
                }
            }
            // C's element (r, j) sits at (j / 32) * panelStride + r * 32 + j % 32; the rest of the last panel is
            // untouched.
            var panelled = [Float](repeating: 0, count: shape.m * shape.n)
            var untouched = true
            for p in 0..<panels {
                for r in 0..<shape.m {
                    for l in 0..<32 {
                        let (column, wanted) = (p * 32 + l, matrixC[p * panelStride + r * 32 + l])
                        if column < shape.n {
                            panelled[r * shape.n + column] = wanted
                        } else if !wanted.isNaN {
                            untouched = false
                        }
                    }
                }
            }
            #expect(relativeError(panelled, hidden) < 1e-5, "\(shape) threads \(threads): first GEMM")
            #expect(untouched, "\(shape) threads \(threads): lanes past N written")
            #expect(relativeError(hiddenOutput, want) < 1e-5, "\(shape) threads \(threads): second GEMM")
        }
    }
}

/// BatchNorm-ReLU applied to B while packing equals applying it first.
@Suite struct FusedPackingTests {
    @Test(arguments: [(16, 300, 45), (9, 40, 64), (128, 513, 196)])
    func batchNormReLUWhilePacking(_ shape: (m: Int, k: Int, n: Int)) {
        var rng = SeededRandom(UInt64(shape.k))
        let matrixA = rng.floats(shape.m * shape.k)
        let matrixB = rng.floats(shape.k * shape.n, -2...2)
        let scale = rng.floats(shape.k, -1.5...1.5)
        let shift = rng.floats(shape.k)
        _ = Self.expectProduct(
            matrixA, matrixB, scale: scale, shift: shift, m: shape.m, k: shape.k, n: shape.n, threads: 2, "\(shape)")
    }

    /// C = A * BatchNorm-ReLU(B) (m x k by k x n), the BatchNorm-ReLU applied while packing, expected
    /// to match the reference product of B activated first; returns C.
    static func expectProduct(
        _ matrixA: [Float], _ matrixB: [Float], scale: [Float], shift: [Float], m: Int, k depth: Int, n: Int,
        threads: Int, _ label: String
    ) -> [Float] {
        let activated = (0..<(depth * n)).map { i in max(0, matrixB[i] * scale[i / n] + shift[i / n]) }
        let want = Reference.matmul(matrixA, activated, m: m, k: depth, n: n)
        let packed = PackedMatrix(rows: m, cols: depth, values: matrixA)
        var matrixC = [Float](repeating: .nan, count: m * n)
        matrixB.withUnsafeBufferPointer { bp in
            scale.withUnsafeBufferPointer { sp in
                shift.withUnsafeBufferPointer { tp in
                    matrixC.withUnsafeMutableBufferPointer {
                        GEMM.multiply(
                            packed, bp.baseAddress!, ldb: n, n: n, $0.baseAddress!, ldc: n,
                            scale: sp.baseAddress!, shift: tp.baseAddress!, threads: threads)
                    }
                }
            }
        }
        #expect(relativeError(matrixC, want) < 1e-5, "\(label) threads \(threads)")
        return matrixC
    }
}

/// A GEMM that the threads split by rows packs B once for all of them, into the buffer it is given:
/// the same sums, bit for bit, as each thread packing for itself.
@Suite struct SharedPackingTests {
    @Test func countIsForRowSplitsOnly() {
        // 98 panels of a 56x56 map split by columns; 7 of a 14x14 map and 2 of a 7x7 map by rows.
        #expect(GEMM.sharedPackingCount(rows: 128, k: 256, n: 3136, threads: 2) == 0)
        #expect(GEMM.sharedPackingCount(rows: 128, k: 992, n: 196, threads: 2) == 992 * 224)
        #expect(GEMM.sharedPackingCount(rows: 128, k: 513, n: 49, threads: 2) == 513 * 64)
        #expect(GEMM.sharedPackingCount(rows: 128, k: 992, n: 196, threads: 1) == 0)
    }

    @Test(arguments: [(128, 992, 196), (128, 513, 49), (16, 300, 45), (40, 37, 17)])
    func matchesPackingPerThread(_ shape: (m: Int, k: Int, n: Int)) {
        var rng = SeededRandom(UInt64(shape.k * 3 + shape.n))
        let matrixA = rng.floats(shape.m * shape.k)
        let matrixB = rng.floats(shape.k * shape.n, -2...2)
        let scale = rng.floats(shape.k, -1.5...1.5)
        let shift = rng.floats(shape.k)
        let activated = (0..<(shape.k * shape.n)).map { i in
            max(0, matrixB[i] * scale[i / shape.n] + shift[i / shape.n])
        }
        let want = Reference.matmul(matrixA, activated, m: shape.m, k: shape.k, n: shape.n)
        let packed = PackedMatrix(rows: shape.m, cols: shape.k, values: matrixA)
        let count = GEMM.sharedPackingCount(rows: shape.m, k: shape.k, n: shape.n, threads: 2)
        #expect(count == shape.k * ((shape.n + 31) / 32 * 32))
        // The buffer as another GEMM leaves it: NaN, none of which may reach C.
        var packing = [Float](repeating: .nan, count: count)
        func product(shared: Bool) -> [Float] {
            var matrixC = [Float](repeating: .nan, count: shape.m * shape.n)
            matrixB.withUnsafeBufferPointer { bp in
                scale.withUnsafeBufferPointer { sp in
                    shift.withUnsafeBufferPointer { tp in
                        packing.withUnsafeMutableBufferPointer { pp in
                            matrixC.withUnsafeMutableBufferPointer {
                                GEMM.multiply(
                                    packed, bp.baseAddress!, ldb: shape.n, n: shape.n, $0.baseAddress!, ldc: shape.n,
                                    scale: sp.baseAddress!, shift: tp.baseAddress!, threads: 2,
                                    packing: shared ? pp.baseAddress! : nil)
                            }
                        }
                    }
                }
            }
            return matrixC
        }
        let shared = product(shared: true)
        let own = product(shared: false)
        #expect(relativeError(shared, want) < 1e-5, "\(shape)")
        #expect(shared == own, "\(shape): shared packing changed the sums")
    }
}

/// Rows of B that are all +0 (a ReLU's output) are left out of the tiles' K loop: the products must
/// not change, whichever rows those are (runs of them, the first, the last, all), and a row holding
/// -0 or a NaN is still multiplied (the NaN reaches C).
@Suite struct ZeroRowTests {
    /// Which of k rows are zero: every third, a run of 40, the first and the last (or all of them).
    static func zeroRows(_ depth: Int, all: Bool) -> Set<Int> {
        all
            ? Set(0..<depth)
            : Set(stride(from: 0, to: depth, by: 3)).union(min(depth, 50)..<min(depth, 90)).union([0, depth - 1])
    }

    @Test(arguments: [(16, 300, 64, false), (128, 513, 196, false), (9, 40, 45, false), (24, 100, 96, true)])
    func batchNormReLUZeroRows(_ shape: (m: Int, k: Int, n: Int, all: Bool)) {
        var rng = SeededRandom(UInt64(shape.k * 5 + shape.n))
        let matrixA = rng.floats(shape.m * shape.k)
        let matrixB = rng.floats(shape.k * shape.n, -2...2)
        var scale = rng.floats(shape.k, -1.5...1.5)
        var shift = rng.floats(shape.k)
        // A dead channel: the BatchNorm-ReLU makes its row +0 in every panel.
        for r in Self.zeroRows(shape.k, all: shape.all) { (scale[r], shift[r]) = (0, -1) }
        for threads in [1, 2] {
            let matrixC = FusedPackingTests.expectProduct(
                matrixA, matrixB, scale: scale, shift: shift, m: shape.m, k: shape.k, n: shape.n,
                threads: threads, "\(shape)")
            if shape.all { #expect(matrixC.allSatisfy { $0 == 0 }, "\(shape): every row zero") }
        }
    }

    @Test(arguments: [(40, 130, 64), (96, 513, 100), (8, 7, 37)])
    func panelMajorZeroRows(_ shape: (m: Int, k: Int, n: Int)) {
        var rng = SeededRandom(UInt64(shape.m + shape.k))
        let matrixA = rng.floats(shape.m * shape.k)
        var matrixB = rng.floats(shape.k * shape.n)
        let zero = Self.zeroRows(shape.k, all: false)
        for r in zero { for column in 0..<shape.n { matrixB[r * shape.n + column] = 0 } }
        // A row of -0 and a row with one NaN are not +0: they stay in the K loop.
        let (negative, nan) = (1, 2)
        for column in 0..<shape.n { matrixB[negative * shape.n + column] = -0.0 }
        matrixB[nan * shape.n + 5] = .nan
        var want = Reference.matmul(matrixA, matrixB.map { $0.isNaN ? 0 : $0 }, m: shape.m, k: shape.k, n: shape.n)
        for i in 0..<shape.m { want[i * shape.n + 5] = .nan }
        let panels = (shape.n + 31) / 32
        let panelStride = shape.k * 32
        var panelled = [Float](repeating: .nan, count: panels * panelStride)
        for r in 0..<shape.k {
            for column in 0..<shape.n {
                panelled[(column / 32) * panelStride + r * 32 + column % 32] = matrixB[r * shape.n + column]
            }
        }
        let packed = PackedMatrix(rows: shape.m, cols: shape.k, values: matrixA)
        for threads in [1, 2] {
            var matrixC = [Float](repeating: .nan, count: shape.m * shape.n)
            panelled.withUnsafeBufferPointer { bp in
                matrixC.withUnsafeMutableBufferPointer {
                    GEMM.multiply(
                        packed, GEMM.segments(bp.baseAddress!, ldb: 32, k: shape.k, panelStride: panelStride),
                        n: shape.n, $0.baseAddress!, ldc: shape.n, threads: threads)
                }
            }
            let column5 = (0..<shape.m).allSatisfy { matrixC[$0 * shape.n + 5].isNaN }
            let others = (0..<(shape.m * shape.n)).filter { $0 % shape.n != 5 }
            #expect(column5, "\(shape) threads \(threads): the NaN row was skipped")
            #expect(
                relativeError(others.map { matrixC[$0] }, others.map { want[$0] }) < 1e-5, "\(shape) threads \(threads)"
            )
        }
    }
}
