#if arch(x86_64) && DENSEKIT_AVX2
    import _Builtin_intrinsics.intel
#endif

/// C = A * B in int32 for the integer executor: A a layer's weight codes less their zero points, B its input's codes
/// less theirs (`Columns`), every value within -255...255 (8-bit codes less a zero point of their
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

    /// How a convolution's K (input channel x kernel tap) is laid out in A and B.
    public enum Arrangement: Equatable, Sendable {
        /// im2col: K channel-major, then kernel row, kernel column; B holds a row for each.
        case columns
        /// A stride-1 "same" convolution with an odd kernel larger than 1: B is the input once, bordered by
        /// kernel / 2 zeros, which each kernel tap reads shifted (no im2col: a 3 x 3 conv's columns were 9 times its
        /// input, and 14% of a run); K tap-major, then channel, the channels padded to an even count.
        case shifted(kernel: Int)

        /// The arrangement a convolution of this geometry gets.
        public static func of(kernel: Int, stride: Int, pads: [Int]) -> Arrangement {
            kernel > 1 && kernel % 2 == 1 && stride == 1 && pads.allSatisfy { $0 == kernel / 2 }
                ? .shifted(kernel: kernel) : .columns
        }

        /// Kernel taps and the channels of each in A and B: (1, K) for `columns`, (kernel^2, channels rounded up
        /// to even) for `shifted`, whose K is channels x kernel^2.
        func taps(k: Int) -> (count: Int, channels: Int) {
            guard case .shifted(let kernel) = self else { return (1, k) }
            let channels = k / (kernel * kernel)
            return (kernel * kernel, (channels + 1) / 2 * 2)
        }
    }

    /// A, packed: panels of 6 rows (the last padded with zero rows), each K pair of a row as one 32-bit
    /// (lower k, upper k + 1) unit, laid out [panel][pair][row]; K in `arrangement`'s order, a tap's channels odd:
    /// its last pair's upper half zero.
    public struct Weights: @unchecked Sendable {
        public let rows: Int
        public let k: Int
        public let arrangement: Arrangement
        let pairs: Int
        let panels: Int
        let storage: [Int16]

        /// `a`: M x K row-major integers within -255...255 (a convolution's: output channel, then input channel,
        /// kernel row, kernel column), packed for `arrangement`.
        public init(_ a: [Int32], rows: Int, k: Int, arrangement: Arrangement = .columns) {
            precondition(a.count == rows * k, "IntegerGEMM: \(a.count) values for \(rows)x\(k)")
            precondition(a.allSatisfy { (-255...255).contains($0) }, "IntegerGEMM: a value outside -255...255")
            self.rows = rows
            self.k = k
            self.arrangement = arrangement
            let (taps, channels) = arrangement.taps(k: k)
            precondition(taps == 1 || k % taps == 0, "IntegerGEMM: K \(k) is not channels x \(taps) taps")
            pairs = taps * ((channels + 1) / 2)
            panels = (rows + IntegerGEMM.tileRows - 1) / IntegerGEMM.tileRows
            let (tileRows, pairs) = (IntegerGEMM.tileRows, pairs)
            var packed = [Int16](repeating: 0, count: panels * pairs * tileRows * 2)
            for row in 0..<rows {
                let (panel, lane) = row.quotientAndRemainder(dividingBy: tileRows)
                for p in 0..<k {
                    // The value's place in the arrangement's K: im2col's own, or its tap's channel.
                    let (channel, tap) = taps == 1 ? (p, 0) : p.quotientAndRemainder(dividingBy: taps)
                    let q = tap * channels + channel
                    packed[((panel * pairs + q / 2) * tileRows + lane) * 2 + q % 2] = Int16(a[row * k + p])
                }
            }
            storage = packed
        }
    }

    /// C (M x N, row-major: each output channel's positions) = A * B.
    public static func multiply(_ a: Weights, _ b: Columns) -> [Int32] {
        precondition(a.k == b.k, "IntegerGEMM: A has \(a.k) columns, B \(b.k) rows")
        precondition(a.arrangement == b.arrangement, "IntegerGEMM: A and B are arranged differently")
        let (rows, n, computed) = (a.rows, b.n, b.computedColumns)
        guard rows > 0, n > 0 else { return [Int32](repeating: 0, count: rows * n) }
        // Whole tiles into a padded C (rows to whole panels, the columns B computes), then its outputs: in place when
        // they are its first N columns (the padded rows follow the first M), else gathered row by row.
        let paddedCount = a.panels * tileRows * computed
        func tiles(into c: UnsafeMutablePointer<Int32>) {
            a.storage.withUnsafeBufferPointer { packedA in
                b.storage.withUnsafeBufferPointer { packedB in
                    b.tapOffsets.withUnsafeBufferPointer { taps in
                        // Column strips outside: one strip of B stays in cache while every panel of A passes.
                        for j in Swift.stride(from: 0, to: computed, by: tileColumns) {
                            for panel in 0..<a.panels {
                                tile(
                                    packedA.baseAddress! + panel * a.pairs * tileRows * 2, packedB.baseAddress! + 2 * j,
                                    taps: taps, pairsPerTap: b.pairsPerTap, pairStride: 2 * b.rowLength,
                                    into: c + panel * tileRows * computed + j, ldc: computed,
                                    rows: min(tileRows, rows - panel * tileRows))
                            }
                        }
                    }
                }
            }
        }
        if computed == n {
            return [Int32](unsafeUninitializedCapacity: paddedCount) { c, count in
                tiles(into: c.baseAddress!)
                count = rows * n
            }
        }
        let padded = UnsafeMutablePointer<Int32>.allocate(capacity: paddedCount)
        defer { padded.deallocate() }
        tiles(into: padded)
        let (width, span) = (b.outputWidth, b.spanWidth)
        return [Int32](unsafeUninitializedCapacity: rows * n) { target, count in
            for row in 0..<rows {
                for y in 0..<n / width {
                    (target.baseAddress! + row * n + y * width).initialize(
                        from: padded + row * computed + y * span, count: width)
                }
            }
            count = rows * n
        }
    }

    /// One 6 x 16 tile over every K pair: A's panel at `a` ([pair][row][2]); B's 16 columns at `b`, read by each tap
    /// from its offset in `taps` (in columns) over `pairsPerTap` pairs of rows, `pairStride` values from one to the
    /// next; stored whole at `c`, rows `ldc` apart. Only the first `rows` of the panel are computed (the last panel's
    /// others are zero padding): the kernel is specialised for 2 and 4 of them, the rows left over by a DenseNet's
    /// 32, 64 and 128 output channels (a whole panel computed for 2 rows made a 3 x 3 conv's product an eighth longer).
    @inline(__always)
    static func tile(
        _ a: UnsafePointer<Int16>, _ b: UnsafePointer<Int16>, taps: UnsafeBufferPointer<Int>, pairsPerTap: Int,
        pairStride: Int, into c: UnsafeMutablePointer<Int32>, ldc: Int, rows: Int
    ) {
        #if arch(x86_64) && DENSEKIT_AVX2
            switch rows {
            case 2: tile(live: 2, a, b, taps: taps, pairsPerTap: pairsPerTap, pairStride: pairStride, into: c, ldc: ldc)
            case 4: tile(live: 4, a, b, taps: taps, pairsPerTap: pairsPerTap, pairStride: pairStride, into: c, ldc: ldc)
            default:
                tile(live: 6, a, b, taps: taps, pairsPerTap: pairsPerTap, pairStride: pairStride, into: c, ldc: ldc)
            }
        #else
            for r in 0..<tileRows {
                for j in 0..<tileColumns {
                    var sum: Int32 = 0
                    for (t, offset) in taps.enumerated() {
                        for p in 0..<pairsPerTap {
                            let unit = a + ((t * pairsPerTap + p) * tileRows + r) * 2
                            let column = b + 2 * offset + p * pairStride + 2 * j
                            sum &+= Int32(unit[0]) &* Int32(column[0]) &+ Int32(unit[1]) &* Int32(column[1])
                        }
                    }
                    c[r * ldc + j] = sum
                }
            }
        #endif
    }

    #if arch(x86_64) && DENSEKIT_AVX2
        /// `tile` on the panel's first `live` rows (a constant where it is inlined, so that the rest fold away).
        @inline(__always)
        static func tile(
            live: Int, _ a: UnsafePointer<Int16>, _ b: UnsafePointer<Int16>, taps: UnsafeBufferPointer<Int>,
            pairsPerTap: Int, pairStride: Int, into c: UnsafeMutablePointer<Int32>, ldc: Int
        ) {
            var (c00, c01, c10, c11, c20, c21) = (
                _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                _mm256_setzero_si256(), _mm256_setzero_si256()
            )
            var (c30, c31, c40, c41, c50, c51) = (c00, c01, c10, c11, c20, c21)
            var units = UnsafeRawPointer(a).assumingMemoryBound(to: Int32.self)
            for offset in taps {
                var row = UnsafeRawPointer(b + 2 * offset)
                for _ in 0..<pairsPerTap {
                    let low = _mm256_loadu_si256(row.assumingMemoryBound(to: __m256i.self))
                    let high = _mm256_loadu_si256((row + 32).assumingMemoryBound(to: __m256i.self))
                    var unit = _mm256_set1_epi32(units[0])
                    c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(unit, low))
                    c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(unit, high))
                    unit = _mm256_set1_epi32(units[1])
                    c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(unit, low))
                    c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(unit, high))
                    if live > 2 {
                        unit = _mm256_set1_epi32(units[2])
                        c20 = _mm256_add_epi32(c20, _mm256_madd_epi16(unit, low))
                        c21 = _mm256_add_epi32(c21, _mm256_madd_epi16(unit, high))
                        unit = _mm256_set1_epi32(units[3])
                        c30 = _mm256_add_epi32(c30, _mm256_madd_epi16(unit, low))
                        c31 = _mm256_add_epi32(c31, _mm256_madd_epi16(unit, high))
                    }
                    if live > 4 {
                        unit = _mm256_set1_epi32(units[4])
                        c40 = _mm256_add_epi32(c40, _mm256_madd_epi16(unit, low))
                        c41 = _mm256_add_epi32(c41, _mm256_madd_epi16(unit, high))
                        unit = _mm256_set1_epi32(units[5])
                        c50 = _mm256_add_epi32(c50, _mm256_madd_epi16(unit, low))
                        c51 = _mm256_add_epi32(c51, _mm256_madd_epi16(unit, high))
                    }
                    units += tileRows
                    row += pairStride * 2
                }
            }
            @inline(__always) func store(_ r: Int, _ first: __m256i, _ second: __m256i) {
                let target = UnsafeMutableRawPointer(c + r * ldc)
                _mm256_storeu_si256(target.assumingMemoryBound(to: __m256i.self), first)
                _mm256_storeu_si256((target + 32).assumingMemoryBound(to: __m256i.self), second)
            }
            store(0, c00, c01)
            store(1, c10, c11)
            if live > 2 {
                store(2, c20, c21)
                store(3, c30, c31)
            }
            if live > 4 {
                store(4, c40, c41)
                store(5, c50, c51)
            }
        }
    #endif
}
