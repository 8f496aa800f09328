#if arch(x86_64) && DENSEKIT_AVX2
    import _Builtin_intrinsics.intel
#endif

/// C = A * B in int32 for the integer executor: A a layer's weight codes less their zero points, B its input's codes
/// less theirs (as im2col arranges them), every value within -255...255 (8-bit codes less a zero point of their
/// type), so each fits 16 bits and each product of two 16-bit lanes fits 32. The sums wrap as int32 sums do, so the
/// result is the int32 accumulation's, bit for bit, in any order.
///
/// With AVX2 the tile multiplies pairs of K at once (`vpmaddwd`: 16 products summed in pairs into 8 int32 lanes) on
/// 6 rows x 16 columns; A is packed in panels of 6 rows, B (`Columns`) holds K in pairs of interleaved rows. Swift
/// does not emit `vpmaddwd` from its own SIMD types (it multiplies int32 lanes with `vpmulld`), so this file reaches
/// it through clang's intrinsics (`_Builtin_intrinsics.intel`, the compiler's own headers, no library): the only
/// file that imports them. Without AVX2 (`DENSEKIT_AVX2` unset) a plain loop over the same layouts runs instead.
public enum IntegerGEMM {
    /// Rows of A a tile (and a panel) holds.
    static let tileRows = 6
    /// Columns of B a tile holds: two vectors of 8 int32.
    static let tileColumns = 16

    /// A, packed: panels of 6 rows (the last padded with zero rows), each K pair of a row as one 32-bit
    /// (lower k, upper k + 1) unit, laid out [panel][pair][row]. K odd: the last pair's upper half is zero.
    public struct Weights: @unchecked Sendable {
        public let rows: Int
        public let k: Int
        let pairs: Int
        let panels: Int
        let storage: [Int16]

        /// `a`: M x K row-major integers within -255...255.
        public init(_ a: [Int32], rows: Int, k: Int) {
            precondition(a.count == rows * k, "IntegerGEMM: \(a.count) values for \(rows)x\(k)")
            precondition(a.allSatisfy { (-255...255).contains($0) }, "IntegerGEMM: a value outside -255...255")
            self.rows = rows
            self.k = k
            pairs = (k + 1) / 2
            panels = (rows + IntegerGEMM.tileRows - 1) / IntegerGEMM.tileRows
            let (tileRows, pairs) = (IntegerGEMM.tileRows, pairs)
            var packed = [Int16](repeating: 0, count: panels * pairs * tileRows * 2)
            for row in 0..<rows {
                let (panel, lane) = row.quotientAndRemainder(dividingBy: tileRows)
                for p in 0..<k {
                    packed[((panel * pairs + p / 2) * tileRows + lane) * 2 + p % 2] = Int16(a[row * k + p])
                }
            }
            storage = packed
        }
    }

    /// B, K x N: rows in pairs, each pair interleaved column by column (value (k, j) at
    /// (k / 2) x 2 x `paddedColumns` + 2 j + k % 2), N padded to whole tiles; padding, and the upper row of the
    /// last pair when K is odd, zero.
    public struct Columns {
        public let k: Int
        public let n: Int
        let paddedColumns: Int
        var storage: [Int16]

        /// The columns of a convolution over `codes` (CHW) less `zeroPoint`: for each input channel and kernel tap
        /// (K rows: channel-major, then kernel row, kernel column) the value each output position reads, 0 where it
        /// reads padding (whose code is the zero point). A linear layer is a 1 x 1 convolution of a 1 x 1 map.
        public init(
            convolving codes: UnsafeBufferPointer<Int32>, zeroPoint: Int32, channels: Int, height: Int, width: Int,
            kernel: Int, stride: Int, pads: [Int]
        ) {
            let oh = (height + pads[0] + pads[2] - kernel) / stride + 1
            let ow = (width + pads[1] + pads[3] - kernel) / stride + 1
            k = channels * kernel * kernel
            n = oh * ow
            precondition(codes.count == channels * height * width, "IntegerGEMM: \(codes.count) codes for the map")
            paddedColumns = (n + IntegerGEMM.tileColumns - 1) / IntegerGEMM.tileColumns * IntegerGEMM.tileColumns
            let (k, rowPair, pointwise) = (
                k, 2 * paddedColumns, kernel == 1 && stride == 1 && pads.allSatisfy { $0 == 0 }
            )
            storage = [Int16](repeating: 0, count: (k + 1) / 2 * rowPair)
            guard let source = codes.baseAddress else { return }
            storage.withUnsafeMutableBufferPointer { out in
                guard let target = out.baseAddress else { return }
                if pointwise {
                    // Row c is channel c's plane: two planes interleaved per pair.
                    let plane = height * width
                    for c in Swift.stride(from: 0, to: k, by: 2) {
                        let (first, pair) = (source + c * plane, target + c / 2 * rowPair)
                        if c + 1 < k {
                            let second = first + plane
                            var j = 0
                            while j + 8 <= plane {
                                let zero = SIMD8<Int32>(repeating: zeroPoint)
                                var both = SIMD16<Int16>()
                                both.evenHalf = SIMD8<Int16>(
                                    truncatingIfNeeded: UnsafeRawPointer(first + j).loadUnaligned(as: SIMD8<Int32>.self)
                                        &- zero)
                                both.oddHalf = SIMD8<Int16>(
                                    truncatingIfNeeded: UnsafeRawPointer(second + j).loadUnaligned(
                                        as: SIMD8<Int32>.self) &- zero)
                                UnsafeMutableRawPointer(pair + 2 * j).storeBytes(of: both, as: SIMD16<Int16>.self)
                                j += 8
                            }
                            for j in j..<plane {
                                pair[2 * j] = Int16(truncatingIfNeeded: first[j] &- zeroPoint)
                                pair[2 * j + 1] = Int16(truncatingIfNeeded: second[j] &- zeroPoint)
                            }
                        } else {
                            for j in 0..<plane { pair[2 * j] = Int16(truncatingIfNeeded: first[j] &- zeroPoint) }
                        }
                    }
                    return
                }
                for c in 0..<channels {
                    for ky in 0..<kernel {
                        for kx in 0..<kernel {
                            let row = (c * kernel + ky) * kernel + kx
                            let line = target + row / 2 * rowPair + row % 2
                            // The output columns whose input column ox x stride - pad + kx is inside the map.
                            let shift = kx - pads[1]
                            let first = max(0, (-shift + stride - 1) / stride)
                            let last = width - 1 - shift < 0 ? 0 : min(ow, (width - 1 - shift) / stride + 1)
                            for oy in 0..<oh {
                                let iy = oy * stride - pads[0] + ky
                                if iy < 0 || iy >= height || first >= last { continue }
                                let input = source + (c * height + iy) * width + shift
                                let output = line + 2 * oy * ow
                                for ox in first..<last {
                                    output[2 * ox] = Int16(truncatingIfNeeded: input[ox * stride] &- zeroPoint)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// C (M x N, row-major) = A * B.
    public static func multiply(_ a: Weights, _ b: Columns) -> [Int32] {
        precondition(a.k == b.k, "IntegerGEMM: A has \(a.k) columns, B \(b.k) rows")
        let (rows, n, stride) = (a.rows, b.n, b.paddedColumns)
        guard rows > 0, n > 0 else { return [Int32](repeating: 0, count: rows * n) }
        // Whole tiles into a padded C, then its first M x N.
        var padded = [Int32](unsafeUninitializedCapacity: a.panels * tileRows * stride) { _, count in
            count = a.panels * tileRows * stride
        }
        a.storage.withUnsafeBufferPointer { packedA in
            b.storage.withUnsafeBufferPointer { packedB in
                padded.withUnsafeMutableBufferPointer { c in
                    // Column strips outside: one strip of B (K x 16) stays in cache while every panel of A passes.
                    for j in Swift.stride(from: 0, to: stride, by: tileColumns) {
                        for panel in 0..<a.panels {
                            tile(
                                packedA.baseAddress! + panel * a.pairs * tileRows * 2, packedB.baseAddress! + 2 * j,
                                pairs: a.pairs, pairStride: 2 * stride,
                                into: c.baseAddress! + panel * tileRows * stride + j, ldc: stride)
                        }
                    }
                }
            }
        }
        return [Int32](unsafeUninitializedCapacity: rows * n) { target, count in
            padded.withUnsafeBufferPointer { c in
                for row in 0..<rows {
                    (target.baseAddress! + row * n).initialize(from: c.baseAddress! + row * stride, count: n)
                }
            }
            count = rows * n
        }
    }

    /// One 6 x 16 tile over every K pair: A's panel at `a` ([pair][row][2]), B's 16 columns at `b`, `pairStride`
    /// values from one pair of rows to the next; stored whole at `c`, rows `ldc` apart.
    @inline(__always)
    static func tile(
        _ a: UnsafePointer<Int16>, _ b: UnsafePointer<Int16>, pairs: Int, pairStride: Int,
        into c: UnsafeMutablePointer<Int32>, ldc: Int
    ) {
        #if arch(x86_64) && DENSEKIT_AVX2
            var (c00, c01, c10, c11, c20, c21) = (
                _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                _mm256_setzero_si256(), _mm256_setzero_si256()
            )
            var (c30, c31, c40, c41, c50, c51) = (c00, c01, c10, c11, c20, c21)
            var units = UnsafeRawPointer(a).assumingMemoryBound(to: Int32.self)
            var row = UnsafeRawPointer(b)
            for _ in 0..<pairs {
                let low = _mm256_loadu_si256(row.assumingMemoryBound(to: __m256i.self))
                let high = _mm256_loadu_si256((row + 32).assumingMemoryBound(to: __m256i.self))
                var unit = _mm256_set1_epi32(units[0])
                c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(unit, low))
                c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(unit, high))
                unit = _mm256_set1_epi32(units[1])
                c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(unit, low))
                c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(unit, high))
                unit = _mm256_set1_epi32(units[2])
                c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(unit, low))
                c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(unit, high))
                unit = _mm256_set1_epi32(units[3])
                c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(unit, low))
                c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(unit, high))
                unit = _mm256_set1_epi32(units[4])
                c40 = _mm256_add_epi32(c40, _mm256_madd_epi16(unit, low))
                c41 = _mm256_add_epi32(c41, _mm256_madd_epi16(unit, high))
                unit = _mm256_set1_epi32(units[5])
                c50 = _mm256_add_epi32(c50, _mm256_madd_epi16(unit, low))
                c51 = _mm256_add_epi32(c51, _mm256_madd_epi16(unit, high))
                units += tileRows
                row += pairStride * 2
            }
            @inline(__always) func store(_ r: Int, _ first: __m256i, _ second: __m256i) {
                let target = UnsafeMutableRawPointer(c + r * ldc)
                _mm256_storeu_si256(target.assumingMemoryBound(to: __m256i.self), first)
                _mm256_storeu_si256((target + 32).assumingMemoryBound(to: __m256i.self), second)
            }
            store(0, c00, c01)
            store(1, c10, c11)
            store(2, c20, c21)
            store(3, c30, c31)
            store(4, c40, c41)
            store(5, c50, c51)
        #else
            for r in 0..<tileRows {
                for j in 0..<tileColumns {
                    var sum: Int32 = 0
                    for p in 0..<pairs {
                        let unit = a + (p * tileRows + r) * 2
                        let column = b + p * pairStride + 2 * j
                        sum &+= Int32(unit[0]) &* Int32(column[0]) &+ Int32(unit[1]) &* Int32(column[1])
                    }
                    c[r * ldc + j] = sum
                }
            }
        #endif
    }
}
