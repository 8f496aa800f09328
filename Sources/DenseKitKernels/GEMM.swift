import Dispatch

/// C = A * B (+ bias per row) (then ReLU), with A packed and B read in place.
///
/// A is M x K (`PackedMatrix`), B is K x N row-major with row stride `ldb`, C is M x N with row
/// stride `ldc`. For a convolution this is weights (OIHW as M x K) times the input (im2col or, for
/// 1x1, the CHW activations themselves), giving the CHW output. Register tile 8 x 16 (one SIMD16
/// accumulator per row), K blocked by 256, M by 128, N split across threads.
public enum GEMM {
    static let kc = 256
    static let mc = 128
    static let nr = 16

    public static func multiply(_ a: PackedMatrix, _ b: UnsafePointer<Float>, ldb: Int, n: Int,
                                _ c: UnsafeMutablePointer<Float>, ldc: Int,
                                bias: UnsafePointer<Float>? = nil, relu: Bool = false, threads: Int = 1) {
        guard n > 0, a.rows > 0 else { return }
        let chunks = threads <= 1 || n < 2 * nr ? 1 : min(threads, n / nr)
        if chunks == 1 {
            run(a, b, ldb, 0, n, c, ldc, bias, relu)
            return
        }
        let perChunk = ((n + chunks - 1) / chunks + nr - 1) / nr * nr
        let bAddress = UInt(bitPattern: b), cAddress = UInt(bitPattern: c)
        let biasAddress = bias.map { UInt(bitPattern: $0) }
        DispatchQueue.concurrentPerform(iterations: chunks) { i in
            let j0 = i * perChunk, j1 = min(n, j0 + perChunk)
            guard j0 < j1 else { return }
            run(a, UnsafePointer(bitPattern: bAddress)!, ldb, j0, j1,
                UnsafeMutablePointer(bitPattern: cAddress)!, ldc,
                biasAddress.flatMap { UnsafePointer(bitPattern: $0) }, relu)
        }
    }

    /// Columns [j0, j1) of C.
    static func run(_ a: PackedMatrix, _ b: UnsafePointer<Float>, _ ldb: Int, _ j0: Int, _ j1: Int,
                    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ bias: UnsafePointer<Float>?, _ relu: Bool) {
        let m = a.rows, k = a.cols
        // The last columns (fewer than 16) are copied into a zero-padded panel, written through raw
        // stores only, so that the tile can always load whole SIMD16 rows.
        let edgeB = UnsafeMutableRawPointer.allocate(byteCount: kc * nr * 4, alignment: 64)
        defer { edgeB.deallocate() }
        var pc = 0
        while pc < k {
            let kb = min(kc, k - pc)
            let first = pc == 0, last = pc + kb == k
            var ic = 0
            while ic < m {
                let mEnd = min(m, ic + mc)
                var jr = j0
                while jr < j1 {
                    let cols = min(nr, j1 - jr)
                    var bp = UnsafeRawPointer(b + pc * ldb + jr)
                    var bStride = ldb * 4
                    if cols < nr {
                        for kk in 0..<kb {
                            for j in 0..<nr {
                                let v: Float = j < cols ? b[(pc + kk) * ldb + jr + j] : 0
                                edgeB.storeBytes(of: v, toByteOffset: (kk * nr + j) * 4, as: Float.self)
                            }
                        }
                        bp = UnsafeRawPointer(edgeB)
                        bStride = nr * 4
                    }
                    var ir = ic
                    while ir < mEnd {
                        tile(kb, a.panel(ir / 8) + pc * 8, bp, bStride, c + ir * ldc + jr, ldc, first, last,
                             bias.map { $0 + ir }, relu, rows: min(8, m - ir), cols: cols)
                        ir += 8
                    }
                    jr += nr
                }
                ic = mEnd
            }
            pc += kb
        }
    }

    /// One 8 x 16 tile over `kb` steps of K (B rows `bStride` bytes apart), stored into the first
    /// `rows` x `cols` of C: whole SIMD16 rows when the tile is full, lane by lane at the edges.
    @inline(__always)
    static func tile(_ kb: Int, _ a: UnsafePointer<Float>, _ b: UnsafeRawPointer, _ bStride: Int,
                     _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ first: Bool, _ last: Bool,
                     _ bias: UnsafePointer<Float>?, _ relu: Bool, rows: Int, cols: Int) {
        var c0 = SIMD16<Float>(), c1 = SIMD16<Float>(), c2 = SIMD16<Float>(), c3 = SIMD16<Float>()
        var c4 = SIMD16<Float>(), c5 = SIMD16<Float>(), c6 = SIMD16<Float>(), c7 = SIMD16<Float>()
        var ap = a
        var bp = b
        for _ in 0..<kb {
            let v = bp.loadUnaligned(as: SIMD16<Float>.self)
            c0.addProduct(SIMD16(repeating: ap[0]), v)
            c1.addProduct(SIMD16(repeating: ap[1]), v)
            c2.addProduct(SIMD16(repeating: ap[2]), v)
            c3.addProduct(SIMD16(repeating: ap[3]), v)
            c4.addProduct(SIMD16(repeating: ap[4]), v)
            c5.addProduct(SIMD16(repeating: ap[5]), v)
            c6.addProduct(SIMD16(repeating: ap[6]), v)
            c7.addProduct(SIMD16(repeating: ap[7]), v)
            ap += 8
            bp += bStride
        }
        if rows == 8 && cols == nr {
            store(c0, c, 0, ldc, first, last, bias, relu)
            store(c1, c, 1, ldc, first, last, bias, relu)
            store(c2, c, 2, ldc, first, last, bias, relu)
            store(c3, c, 3, ldc, first, last, bias, relu)
            store(c4, c, 4, ldc, first, last, bias, relu)
            store(c5, c, 5, ldc, first, last, bias, relu)
            store(c6, c, 6, ldc, first, last, bias, relu)
            store(c7, c, 7, ldc, first, last, bias, relu)
        } else {
            let accumulators = [c0, c1, c2, c3, c4, c5, c6, c7]
            for r in 0..<rows {
                let row = c + r * ldc
                for j in 0..<cols {
                    var v = accumulators[r][j]
                    if first {
                        if let bias { v += bias[r] }
                    } else {
                        v += row[j]
                    }
                    if last && relu && v < 0 { v = 0 }
                    row[j] = v
                }
            }
        }
    }

    @inline(__always)
    static func store(_ acc: SIMD16<Float>, _ c: UnsafeMutablePointer<Float>, _ r: Int, _ ldc: Int,
                      _ first: Bool, _ last: Bool, _ bias: UnsafePointer<Float>?, _ relu: Bool) {
        let p = UnsafeMutableRawPointer(c + r * ldc)
        var v = acc
        if first {
            if let bias { v += SIMD16(repeating: bias[r]) }
        } else {
            v += p.loadUnaligned(as: SIMD16<Float>.self)
        }
        if last && relu { v = v.replacing(with: 0, where: v .< 0) }
        p.storeBytes(of: v, as: SIMD16<Float>.self)
    }
}

extension SIMD16 where Scalar == Float {
    @inline(__always) mutating func addProduct(_ a: SIMD16<Float>, _ b: SIMD16<Float>) {
        self = self.addingProduct(a, b)
    }
}
