/// C = A * B (+ bias per row) (then ReLU), with A packed and B read in place.
///
/// A is M x K (`PackedMatrix`), C is M x N with row stride `ldc`. B is K x N, given as segments of
/// consecutive K rows that share a row stride: one strided matrix for a plain GEMM, or one segment
/// per kernel tap for a convolution read straight from its padded phase planes (`PhaseConvolution`).
/// Consecutive segments are packed together into K blocks of at most `kc` rows (or, for matrices of at
/// most 32 rows, read in place).
/// B and C may also be panel-major: N cut into 32-column panels `panelStride` floats apart, each
/// holding its rows of 32 consecutive floats (row stride 32), which is the layout B is packed into.
/// A GEMM that writes such a C hands the next GEMM a B it reads in place, with no packing.
/// Register tile 8 x 32 (two SIMD16 accumulators per row, 16 in all, so the two FMA ports stay
/// busy while B rows and A broadcasts stream from L1; with AVX2's 16 registers of 256 bits, four 4 x 16
/// quarters, see `tile`), K blocked by `kc` (512, or 256 with AVX-512), M by 128, N split across threads.
/// A panel's last columns: 8 or fewer in a thin tile, 9 to 24 in a half tile of 16 (and a thin one).
/// A full panel's rows of +0 (packed after a BatchNorm-ReLU, or a ReLU's panel-major output read in
/// place) are left out of its tiles' K loop (`gather`): a ReLU's output is sparse, and such rows add
/// nothing (DenseNet-121 --exact 13% faster, the same outputs bit for bit; see the README).
public enum GEMM {
    #if DENSEKIT_AVX512
        static let kc = 256
    #else
        /// 512 rows of a B panel (64 KB) still sit in L2 beside A's block; one pass in two fewer ends its
        /// tiles (measured faster than 256; 1024 no faster).
        static let kc = 512
    #endif
    static let mc = 128
    /// The register tile's width, which is also the width of B's and C's column panels (see `Segment`).
    public static let nr = 32

    /// K rows [k0, k0 + count) of B start at `base` and are `stride` floats apart, B's element (k, j)
    /// at base + (k - k0) * stride + (j / 32) * panelStride + j % 32 (row-major: `panelStride` 32).
    /// With `scale` and `shift`, row k is read as max(0, b * scale[k] + shift[k]) (a BatchNorm-ReLU
    /// applied while packing).
    public struct Segment {
        public var k0: Int
        public var count: Int
        public var base: UnsafePointer<Float>
        public var stride: Int
        public var panelStride: Int
        public var scale: UnsafePointer<Float>?
        public var shift: UnsafePointer<Float>?

        public init(
            k0: Int, count: Int, base: UnsafePointer<Float>, stride: Int, panelStride: Int = nr,
            scale: UnsafePointer<Float>? = nil, shift: UnsafePointer<Float>? = nil
        ) {
            self.k0 = k0
            self.count = count
            self.base = base
            self.stride = stride
            self.panelStride = panelStride
            self.scale = scale
            self.shift = shift
        }

        /// Panel-major rows of 32 floats: the panel at column `jr` is already packed.
        var isPacked: Bool { stride == nr && panelStride != nr && scale == nil }

        /// Row k0 of the panel at column `jr` (a multiple of 32).
        func origin(_ jr: Int) -> UnsafePointer<Float> { base + (jr / nr) * panelStride }
    }

    /// Plain GEMM: B is K x N row-major with row stride `ldb`; with `scale`/`shift` (K values each),
    /// B's rows go through BatchNorm-ReLU as they are packed. `packing`: see `sharedPackingCount`.
    public static func multiply(
        _ packedA: PackedMatrix, _ matrixB: UnsafePointer<Float>, ldb: Int, n: Int,
        _ matrixC: UnsafeMutablePointer<Float>, ldc: Int, cPanelStride: Int = nr,
        bias: UnsafePointer<Float>? = nil, relu: Bool = false,
        scale: UnsafePointer<Float>? = nil, shift: UnsafePointer<Float>? = nil, threads: Int = 1,
        packing: UnsafeMutablePointer<Float>? = nil
    ) {
        multiply(
            packedA, segments(matrixB, ldb: ldb, k: packedA.cols, scale: scale, shift: shift), n: n, matrixC, ldc: ldc,
            cPanelStride: cPanelStride,
            bias: bias, relu: relu, threads: threads, packing: packing)
    }

    /// The K rows of a matrix with row stride `ldb` (and `panelStride`, for a panel-major one) as
    /// segments of at most `kc` rows.
    public static func segments(
        _ matrixB: UnsafePointer<Float>, ldb: Int, k: Int, panelStride: Int = nr,
        scale: UnsafePointer<Float>? = nil, shift: UnsafePointer<Float>? = nil
    ) -> [Segment] {
        var segments: [Segment] = []
        var k0 = 0
        while k0 < k {
            let count = min(kc, k - k0)
            segments.append(
                Segment(
                    k0: k0, count: count, base: matrixB + k0 * ldb, stride: ldb, panelStride: panelStride,
                    scale: scale.map { $0 + k0 }, shift: shift.map { $0 + k0 }))
            k0 += count
        }
        return segments
    }

    /// How the threads divide an M x N GEMM: not at all, by column panels (each thread packs only its
    /// own B panels), or by 8-row tiles of A, when there are few panels or they divide among the
    /// threads clearly worse than the tiles do (14x14 and 7x7 maps).
    enum Split { case none, columns, rows }

    static func split(rows: Int, n: Int, threads: Int) -> Split {
        let panels = (n + nr - 1) / nr
        let tiles = (rows + 7) / 8
        func imbalance(_ units: Int) -> Double {
            let parts = min(threads, units)
            return Double((units + parts - 1) / parts) * Double(threads) / Double(units)
        }
        if threads <= 1 || (panels < 2 && tiles < 2) { return .none }
        if panels >= 2 * threads && imbalance(panels) <= imbalance(tiles) * 1.05 || tiles < threads { return .columns }
        return .rows
    }

    /// Floats of the `packing` buffer that an M x K by K x N GEMM on `threads` threads uses (0: none).
    /// Split by rows, every thread needs all of B: given room, B is packed once, panel-major (its K
    /// rows divided among the threads), instead of by every thread for itself.
    public static func sharedPackingCount(rows: Int, k: Int, n: Int, threads: Int) -> Int {
        split(rows: rows, n: n, threads: threads) == .rows ? k * ((n + nr - 1) / nr * nr) : 0
    }

    /// GEMM over B segments covering K in order, each at most `kc` rows. `packing`, if given, holds at
    /// least `sharedPackingCount` floats.
    public static func multiply(
        _ packedA: PackedMatrix, _ segments: [Segment], n: Int,
        _ matrixC: UnsafeMutablePointer<Float>, ldc: Int, cPanelStride: Int = nr,
        bias: UnsafePointer<Float>? = nil, relu: Bool = false, threads: Int = 1,
        packing: UnsafeMutablePointer<Float>? = nil
    ) {
        guard n > 0, packedA.rows > 0 else { return }
        switch split(rows: packedA.rows, n: n, threads: threads) {
        case .none:
            run(packedA, segments, kBlocks(segments), 0..<packedA.rows, 0, n, matrixC, ldc, cPanelStride, bias, relu)
        case .columns:
            // Two parts per thread, claimed as threads get free: a thread that the machine slows down
            // does less of the step.
            let blocks = kBlocks(segments)
            WorkerPool.shared(threads: threads).parallelFor(n, granule: nr, parts: threads * 2) { columns in
                run(
                    packedA, segments, blocks, 0..<packedA.rows, columns.lowerBound, columns.upperBound, matrixC, ldc,
                    cPanelStride, bias,
                    relu)
            }
        case .rows:
            let pool = WorkerPool.shared(threads: threads)
            var rowSegments = segments
            if let packing, !segments.allSatisfy(\.isPacked) {
                let panelStride = packedA.cols * nr
                pool.parallelFor(packedA.cols) { rows in
                    packPanels(segments, rows: rows, n: n, into: packing, panelStride: panelStride)
                }
                rowSegments = Self.segments(UnsafePointer(packing), ldb: nr, k: packedA.cols, panelStride: panelStride)
            }
            let blocks = kBlocks(rowSegments)
            pool.parallelFor(packedA.rows, granule: 8) { rows in
                run(packedA, rowSegments, blocks, rows, 0, n, matrixC, ldc, cPanelStride, bias, relu)
            }
        }
    }

    /// Rows `rows` of B (given as `segments`) into its panel-major copy at `packing`: row k of the
    /// panel at column jr at packing + (jr / 32) * panelStride + 32 k, zero past column n.
    static func packPanels(
        _ segments: [Segment], rows: Range<Int>, n: Int, into packing: UnsafeMutablePointer<Float>, panelStride: Int
    ) {
        for s in segments {
            let first = max(rows.lowerBound, s.k0)
            let end = min(rows.upperBound, s.k0 + s.count)
            guard first < end else { continue }
            for k in first..<end {
                let rowOffset = k - s.k0
                let row = Segment(
                    k0: k, count: 1, base: s.base + rowOffset * s.stride, stride: s.stride, panelStride: s.panelStride,
                    scale: s.scale.map { $0 + rowOffset }, shift: s.shift.map { $0 + rowOffset })
                for jr in stride(from: 0, to: n, by: nr) {
                    pack(
                        row, jr, min(nr, n - jr),
                        into: UnsafeMutableRawPointer(packing + (jr / nr) * panelStride + k * nr))
                }
            }
        }
    }

    /// Where one 8-row tile of A lands in C: its first `rows` rows, from `c + offset`, `ldc` apart;
    /// with `skip`, the columns `skips[skip]` names are left as they are.
    public struct TileTarget: Sendable {
        public var offset: Int
        public var rows: Int
        public var skip: Int?
        public init(offset: Int, rows: Int, skip: Int? = nil) {
            self.offset = offset
            self.rows = rows
            self.skip = skip
        }
    }

    /// Which lanes of a tile's 32 columns are added into C: all ones to keep, zero to skip.
    typealias Keep = (SIMD16<UInt32>, SIMD16<UInt32>)
    /// Every lane kept: the mask of a tile that skips nothing. Tiles always apply a mask (a bitwise and
    /// of their accumulators) rather than take an optional one: the optional's copies and branches after
    /// each AVX2 quarter cost more than the mask.
    static let keepAll: Keep = (SIMD16(repeating: ~0), SIMD16(repeating: ~0))

    /// Columns of C that a tile leaves alone: column j is skipped when (j + phase) mod period is in
    /// `skipped` (the image columns of rows `period` wide that a shifted tile must not reach).
    public struct ColumnSkip: Sendable {
        public let phase: Int, period: Int, skipped: Range<Int>
        /// Lane x is all ones when column x mod period is kept, zero when it is skipped, for x in
        /// 0..<period + 32: the 32 columns of any panel are one contiguous slice.
        private let lanes: [UInt32]

        public init(phase: Int, period: Int, skipped: Range<Int>) {
            self.phase = phase
            self.period = period
            self.skipped = skipped
            lanes = (0..<(period + nr)).map { skipped.contains($0 % period) ? 0 : ~0 }
        }

        /// The bit masks that keep the 32 columns from `jr` that are not skipped, as two 16-lane vectors
        /// (bitwise masks rather than `SIMDMask`s, whose construction is a loop over the lanes).
        func mask(_ jr: Int) -> Keep {
            let position = ((jr + phase) % period + period) % period
            return lanes.withUnsafeBytes { lanes in
                let laneMask = lanes.baseAddress! + position * 4
                return (
                    laneMask.loadUnaligned(as: SIMD16<UInt32>.self),
                    laneMask.loadUnaligned(fromByteOffset: 64, as: SIMD16<UInt32>.self)
                )
            }
        }
    }

    /// C += A * B with each 8-row tile of A added into C at its own target (`targets[i]` for A's rows
    /// 8i..<8i+8), so tiles may overlap one another in C. Threads split A's rows in multiples of
    /// `rowGranule`: tiles that overlap must fall in one granule. Each thread first calls `prepare`
    /// with its rows (to initialize the part of C they add into).
    public static func accumulate(
        _ packedA: PackedMatrix, _ segments: [Segment], n: Int,
        _ matrixC: UnsafeMutablePointer<Float>, ldc: Int,
        targets: [TileTarget], skips: [ColumnSkip] = [], rowGranule: Int, threads: Int = 1,
        prepare: (Range<Int>) -> Void
    ) {
        precondition(targets.count == (packedA.rows + 7) / 8 && rowGranule % 8 == 0, "GEMM: one target per 8-row tile")
        let blocks = kBlocks(segments)
        let placement = Placement(targets: targets, skips: skips)
        WorkerPool.shared(threads: threads).parallelFor(packedA.rows, granule: rowGranule) { rows in
            prepare(rows)
            guard n > 0 else { return }
            run(packedA, segments, blocks, rows, 0, n, matrixC, ldc, nr, nil, false, placement: placement)
        }
    }

    /// The tile targets of `accumulate`.
    struct Placement {
        let targets: [TileTarget]
        let skips: [ColumnSkip]
    }

    /// Runs of consecutive segments holding at most `kc` rows in all (each segment holds at most `kc`).
    static func kBlocks(_ segments: [Segment]) -> [Range<Int>] {
        var blocks: [Range<Int>] = []
        var start = 0
        var rows = 0
        for (i, s) in segments.enumerated() {
            precondition(s.count <= kc, "GEMM segment of \(s.count) rows")
            if rows + s.count > kc {
                blocks.append(start..<i)
                (start, rows) = (i, 0)
            }
            rows += s.count
        }
        if start < segments.count { blocks.append(start..<segments.count) }
        return blocks
    }

    /// Columns [j0, j1) of C. Loop order: M blocks of 128 rows, then 32-column panels, then all of K
    /// (K block by K block, each B panel packed contiguously unless it is read in place), then the
    /// 8-row tiles; a C panel stays in L1 across K and the B window of one panel stays in L1/L2 across
    /// the taps of a convolution. With a `placement`, every tile is added into C at its target and all
    /// rows form one M block (each B panel serves all of them).
    static func run(
        _ packedA: PackedMatrix, _ segments: [Segment], _ blocks: [Range<Int>], _ rows: Range<Int>, _ j0: Int,
        _ j1: Int,
        _ matrixC: UnsafeMutablePointer<Float>, _ ldc: Int, _ cPanelStride: Int, _ bias: UnsafePointer<Float>?,
        _ relu: Bool,
        placement: Placement? = nil
    ) {
        precondition(j0 % nr == 0, "GEMM: columns split at a panel edge")
        let rowEnd = rows.upperBound
        let mc = placement == nil ? Self.mc : rows.count
        // With at most 32 rows (a 3x3 conv's k outputs) a packed panel would serve only four tiles:
        // full panels are read in place instead, segment by segment (measured 5-15% faster there).
        let inPlace = packedA.rows <= 32 && segments.allSatisfy { $0.scale == nil }
        // K blocks whose segments are panel-major: read in place at any width.
        let packed = blocks.map { segments[$0].allSatisfy(\.isPacked) }
        // The packed B panel, then room for one 8 x 32 edge tile.
        let panel = UnsafeMutableRawPointer.allocate(byteCount: (kc + 8) * nr * 4, alignment: 64)
        defer { panel.deallocate() }
        let edge = (panel + kc * nr * 4).bindMemory(to: Float.self, capacity: 8 * nr)
        // The K rows (of the block) that a gathered B panel holds: those not all +0 (`gather`).
        let listed = UnsafeMutablePointer<Int32>.allocate(capacity: kc)
        defer { listed.deallocate() }
        // The kept lanes of the current panel, per `ColumnSkip`, then `keepAll` for tiles without one.
        let skips = placement?.skips ?? []
        var masks = [Keep](repeating: keepAll, count: skips.count + 1)
        var ic = rows.lowerBound
        while ic < rowEnd {
            let mEnd = min(rowEnd, ic + mc)
            // This block of A (the weights: up to 512 KB, used once per run, so in L3 or memory) is
            // prefetched into L2 in one burst: the tiles read it 32 bytes at a time, each load waiting on its miss.
            Prefetch.l2(UnsafeRawPointer(packedA.panel(ic / 8)), bytes: (mEnd - ic + 7) / 8 * packedA.cols * 32)
            var jr = j0
            while jr < j1 {
                let cols = min(nr, j1 - jr)
                for (i, skip) in skips.enumerated() { masks[i] = skip.mask(jr) }
                /// The 8-row tiles of this panel over K rows [k0, k0 + kb) of B, of which B at `source` holds the
                /// `count` listed at `kRows`, or all of them (nil, always for a panel's last columns).
                func tiles(
                    _ kb: Int, _ k0: Int, _ source: UnsafeRawPointer, _ bStride: Int, _ kRows: UnsafePointer<Int32>?,
                    _ count: Int,
                    first: Bool, last: Bool
                ) {
                    var ir = ic
                    while ir < mEnd {
                        let target =
                            placement?.targets[ir / 8] ?? TileTarget(offset: ir * ldc, rows: min(8, rowEnd - ir))
                        let (ap, cp, firstTile) = (
                            packedA.panel(ir / 8) + k0 * 8, matrixC + target.offset + (jr / nr) * cPanelStride,
                            first && placement == nil
                        )
                        let (tileBias, skip) = (bias.map { $0 + ir }, masks[target.skip ?? skips.count])
                        if cols <= 8 {
                            thinTile(
                                kb, ap, source, bStride, cp, ldc, firstTile, last, tileBias, relu, rows: target.rows,
                                cols: cols,
                                skip: skip, edge: edge)
                        } else if cols <= 24 {
                            // 16 columns, then the rest (at most 8) thin: a 7x7 map's 49 columns cost 52
                            // columns' multiply-adds instead of 64, a 28x28 map's last 16 half a tile's.
                            halfTile(
                                kRows, count, ap, source, bStride, cp, ldc, firstTile, last, tileBias, relu,
                                rows: target.rows, cols: min(cols, 16),
                                skip: skip.0, edge: edge)
                            if cols > 16 {
                                thinTile(
                                    kb, ap, source + 64, bStride, cp + 16, ldc, firstTile, last, tileBias, relu,
                                    rows: target.rows,
                                    cols: cols - 16, skip: (skip.1, skip.1), edge: edge)
                            }
                        } else {
                            tile(
                                kRows, count, ap, source, bStride, cp, ldc, firstTile, last, tileBias, relu,
                                rows: target.rows, cols: cols,
                                skip: skip, edge: edge)
                        }
                        ir += 8
                    }
                }
                for (bi, block) in blocks.enumerated() {
                    if inPlace && cols == nr || packed[bi] {
                        for si in block {
                            let seg = segments[si]
                            var (source, stride, kRows, count) = (
                                UnsafeRawPointer(seg.origin(jr)), seg.stride * 4, UnsafePointer<Int32>?.none, seg.count
                            )
                            // A panel-major B's rows of +0 (a ReLU's output) are left out of the tiles' K loop, the
                            // others copied together (a strided B read in place serves too few tiles to pay for it).
                            if seg.isPacked && cols == nr {
                                count = gather(source, rows: seg.count, stride: stride, into: panel, listing: listed)
                                (source, stride, kRows) = (
                                    UnsafeRawPointer(panel), nr * 4, count < seg.count ? UnsafePointer(listed) : nil
                                )
                            }
                            tiles(
                                seg.count, seg.k0, source, stride, kRows, count,
                                first: bi == 0 && si == block.lowerBound,
                                last: bi == blocks.count - 1 && si == block.upperBound - 1)
                        }
                    } else {
                        var kb = 0
                        for s in block {
                            pack(segments[s], jr, cols, into: panel + kb * nr * 4)
                            kb += segments[s].count
                        }
                        // Rows of +0 (from a BatchNorm-ReLU) are left out of the tiles' K loop.
                        let sparse = cols == nr && segments[block].allSatisfy { $0.scale != nil }
                        let count = sparse ? gather(panel, rows: kb, stride: nr * 4, into: panel, listing: listed) : kb
                        // The next panel's rows of this K block (strided reads from planes, which the hardware
                        // prefetcher does not follow), into L2 while these tiles run.
                        if jr + nr < j1 {
                            let bytes = min(nr, j1 - jr - nr) * 4
                            for s in block where segments[s].stride != nr {
                                let seg = segments[s]
                                let next = UnsafeRawPointer(seg.origin(jr + nr))
                                for kk in 0..<seg.count { Prefetch.l2(next + kk * seg.stride * 4, bytes: bytes) }
                            }
                        }
                        tiles(
                            kb, segments[block.lowerBound].k0, UnsafeRawPointer(panel), nr * 4,
                            count < kb ? listed : nil, count,
                            first: bi == 0, last: bi == blocks.count - 1)
                    }
                }
                jr += nr
            }
            ic = mEnd
        }
    }

    /// Copies the kb x 32 panel of B at column `jr` contiguously (zero past `cols`): raw stores only.
    @inline(__always)
    static func pack(_ segment: Segment, _ jr: Int, _ cols: Int, into panel: UnsafeMutableRawPointer) {
        if let scale = segment.scale, let shift = segment.shift {
            for kk in 0..<segment.count {
                let scaleVector = SIMD16<Float>(repeating: scale[kk])
                let shiftVector = SIMD16<Float>(repeating: shift[kk])
                let row = segment.origin(jr) + kk * segment.stride
                if cols == nr {
                    let raw = UnsafeRawPointer(row)
                    var low = shiftVector.addingProduct(raw.loadUnaligned(as: SIMD16<Float>.self), scaleVector)
                    var high = shiftVector.addingProduct(
                        raw.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self), scaleVector)
                    low = low.replacing(with: 0, where: low .< 0)
                    high = high.replacing(with: 0, where: high .< 0)
                    panel.storeBytes(of: low, toByteOffset: kk * nr * 4, as: SIMD16<Float>.self)
                    panel.storeBytes(of: high, toByteOffset: kk * nr * 4 + 64, as: SIMD16<Float>.self)
                } else {
                    // A panel's last columns: zero the row, then its first 16 columns as a vector (if it
                    // has them) and the rest one by one (not lane by lane over all 32: a 14x14 map has 4
                    // such columns, a 7x7 one 17).
                    let out = panel + kk * nr * 4
                    out.storeBytes(of: SIMD16<Float>(), as: SIMD16<Float>.self)
                    out.storeBytes(of: SIMD16<Float>(), toByteOffset: 64, as: SIMD16<Float>.self)
                    var column = 0
                    if cols >= 16 {
                        var low = shiftVector.addingProduct(
                            UnsafeRawPointer(row).loadUnaligned(as: SIMD16<Float>.self), scaleVector)
                        low = low.replacing(with: 0, where: low .< 0)
                        out.storeBytes(of: low, as: SIMD16<Float>.self)
                        column = 16
                    }
                    while column < cols {
                        out.storeBytes(
                            of: relu(shift[kk].addingProduct(row[column], scale[kk])), toByteOffset: column * 4,
                            as: Float.self)
                        column += 1
                    }
                }
            }
            return
        }
        if cols == nr {
            for kk in 0..<segment.count {
                let row = UnsafeRawPointer(segment.origin(jr) + kk * segment.stride)
                panel.storeBytes(
                    of: row.loadUnaligned(as: SIMD16<Float>.self), toByteOffset: kk * nr * 4, as: SIMD16<Float>.self)
                panel.storeBytes(
                    of: row.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self),
                    toByteOffset: kk * nr * 4 + 64, as: SIMD16<Float>.self)
            }
        } else {
            for kk in 0..<segment.count {
                let row = segment.origin(jr) + kk * segment.stride
                let out = panel + kk * nr * 4
                out.storeBytes(of: SIMD16<Float>(), as: SIMD16<Float>.self)
                out.storeBytes(of: SIMD16<Float>(), toByteOffset: 64, as: SIMD16<Float>.self)
                var column = 0
                if cols >= 16 {
                    out.storeBytes(
                        of: UnsafeRawPointer(row).loadUnaligned(as: SIMD16<Float>.self), as: SIMD16<Float>.self)
                    column = 16
                }
                while column < cols {
                    out.storeBytes(of: row[column], toByteOffset: column * 4, as: Float.self)
                    column += 1
                }
            }
        }
    }

    /// Copies to `panel`, one after another, the rows of a `rows` x 32 panel of B at `source` (rows `stride`
    /// bytes apart; `source` may be `panel` itself) that are not all +0, and lists their numbers in `listing`;
    /// returns how many. A row of +0 adds nothing to any product (the weights are finite): a tile's K
    /// loop leaves it out, with the same result. A pass of its own over the stored panel: the same test
    /// inside `pack`'s loop had the optimizer split the rows into lanes (the pack then took 2.5x as long).
    static func gather(
        _ source: UnsafeRawPointer, rows: Int, stride: Int, into panel: UnsafeMutableRawPointer,
        listing: UnsafeMutablePointer<Int32>
    ) -> Int {
        var kept = 0
        for k in 0..<rows {
            let row = source + k * stride
            let low = row.loadUnaligned(as: SIMD16<UInt32>.self)
            let high = row.loadUnaligned(fromByteOffset: 64, as: SIMD16<UInt32>.self)
            if (low | high).max() == 0 { continue }
            let to = panel + kept * nr * 4
            if UnsafeRawPointer(to) != row {
                to.storeBytes(of: low, as: SIMD16<UInt32>.self)
                to.storeBytes(of: high, toByteOffset: 64, as: SIMD16<UInt32>.self)
            }
            listing[kept] = Int32(k)
            kept += 1
        }
        return kept
    }

    /// One 8 x 32 tile over `count` K rows (those listed at `rows`, or the first `count` if nil) of A's
    /// packed rows from `packedRows`, and `count` rows of B, `bStride` bytes apart, from `rowsB`; stored into the first
    /// `rows` x `cols` of C: whole SIMD16 rows when the tile is full, lane by lane at the edges.
    /// `tile` and `store` are inlined by force (`@_transparent`): the optimizer left them as calls
    /// despite `@inline(__always)`, and SIMD values passed to a call are split into 128-bit pieces
    /// (the `store` calls alone took 5% of a DenseNet-121 run; a call per tile costs 5% too).
    /// Keep what is inlined into `run` small: past the optimizer's size limit it leaves the generic
    /// SIMD loads and stores themselves as calls (seen once: 2.5x slower; `objdump -d` of the binary
    /// then shows calls to `loadUnaligned` and `storeBytes`).
    @_transparent
    static func tile(
        _ rows: UnsafePointer<Int32>?, _ count: Int, _ packedRows: UnsafePointer<Float>, _ rowsB: UnsafeRawPointer,
        _ bStride: Int,
        _ matrixC: UnsafeMutablePointer<Float>, _ ldc: Int, _ first: Bool, _ last: Bool,
        _ bias: UnsafePointer<Float>?, _ relu: Bool, rows tileRows: Int, cols: Int,
        skip: Keep, edge: UnsafeMutablePointer<Float>
    ) {
        #if !DENSEKIT_AVX512
            // 16 vector registers of 256 bits (AVX2): the tile's 32 accumulators would not fit (they were
            // spilled to the stack); four 4 x 16 quarters do. (Two 6 x 16 passes and a 2 x 32 one, ending
            // fewer times, measured no faster.)
            let full = tileRows == 8 && cols == nr
            for q in 0..<4 where q < 2 || tileRows > 4 {
                let (r0, j0) = (q / 2 * 4, q % 2 * 16)
                var (u0, u1, u2, u3) = quarter(rows, count, packedRows + r0, rowsB + j0 * 4, bStride)
                let lanes = j0 == 0 ? skip.0 : skip.1
                u0.keep(lanes)
                u1.keep(lanes)
                u2.keep(lanes)
                u3.keep(lanes)
                if full {
                    let target = matrixC + r0 * ldc + j0
                    let rb = bias.map { $0 + r0 }
                    storeRow(u0, target, first, last, rb?[0], relu)
                    storeRow(u1, target + ldc, first, last, rb?[1], relu)
                    storeRow(u2, target + 2 * ldc, first, last, rb?[2], relu)
                    storeRow(u3, target + 3 * ldc, first, last, rb?[3], relu)
                } else {
                    let edgeTarget = UnsafeMutableRawPointer(edge + r0 * nr + j0)
                    edgeTarget.storeBytes(of: u0, as: SIMD16<Float>.self)
                    edgeTarget.storeBytes(of: u1, toByteOffset: nr * 4, as: SIMD16<Float>.self)
                    edgeTarget.storeBytes(of: u2, toByteOffset: nr * 8, as: SIMD16<Float>.self)
                    edgeTarget.storeBytes(of: u3, toByteOffset: nr * 12, as: SIMD16<Float>.self)
                }
            }
            if !full { addEdge(edge, matrixC, ldc, first, last, bias, relu, rows: tileRows, cols: cols) }
        #else
            var l0 = SIMD16<Float>()
            var l1 = SIMD16<Float>()
            var l2 = SIMD16<Float>()
            var l3 = SIMD16<Float>()
            var l4 = SIMD16<Float>()
            var l5 = SIMD16<Float>()
            var l6 = SIMD16<Float>()
            var l7 = SIMD16<Float>()
            var h0 = SIMD16<Float>()
            var h1 = SIMD16<Float>()
            var h2 = SIMD16<Float>()
            var h3 = SIMD16<Float>()
            var h4 = SIMD16<Float>()
            var h5 = SIMD16<Float>()
            var h6 = SIMD16<Float>()
            var h7 = SIMD16<Float>()
            // (Not measured with AVX-512: the optimizer may or may not make two loops of the list's test.)
            var bp = rowsB
            for i in 0..<count {
                let ap = packedRows + (rows.map { Int($0[i]) } ?? i) * 8
                let lo = bp.loadUnaligned(as: SIMD16<Float>.self)
                let hi = bp.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
                bp += bStride
                var broadcast = SIMD16<Float>(repeating: ap[0])
                l0.addProduct(broadcast, lo)
                h0.addProduct(broadcast, hi)
                broadcast = SIMD16<Float>(repeating: ap[1])
                l1.addProduct(broadcast, lo)
                h1.addProduct(broadcast, hi)
                broadcast = SIMD16<Float>(repeating: ap[2])
                l2.addProduct(broadcast, lo)
                h2.addProduct(broadcast, hi)
                broadcast = SIMD16<Float>(repeating: ap[3])
                l3.addProduct(broadcast, lo)
                h3.addProduct(broadcast, hi)
                broadcast = SIMD16<Float>(repeating: ap[4])
                l4.addProduct(broadcast, lo)
                h4.addProduct(broadcast, hi)
                broadcast = SIMD16<Float>(repeating: ap[5])
                l5.addProduct(broadcast, lo)
                h5.addProduct(broadcast, hi)
                broadcast = SIMD16<Float>(repeating: ap[6])
                l6.addProduct(broadcast, lo)
                h6.addProduct(broadcast, hi)
                broadcast = SIMD16<Float>(repeating: ap[7])
                l7.addProduct(broadcast, lo)
                h7.addProduct(broadcast, hi)
            }
            do {
                // Skipped lanes add nothing (only `accumulate`, which adds into C, skips any).
                let (lo, hi) = skip
                l0.keep(lo)
                h0.keep(hi)
                l1.keep(lo)
                h1.keep(hi)
                l2.keep(lo)
                h2.keep(hi)
                l3.keep(lo)
                h3.keep(hi)
                l4.keep(lo)
                h4.keep(hi)
                l5.keep(lo)
                h5.keep(hi)
                l6.keep(lo)
                h6.keep(hi)
                l7.keep(lo)
                h7.keep(hi)
            }
            if tileRows == 8 && cols == nr {
                store(l0, h0, matrixC, 0, ldc, first, last, bias, relu)
                store(l1, h1, matrixC, 1, ldc, first, last, bias, relu)
                store(l2, h2, matrixC, 2, ldc, first, last, bias, relu)
                store(l3, h3, matrixC, 3, ldc, first, last, bias, relu)
                store(l4, h4, matrixC, 4, ldc, first, last, bias, relu)
                store(l5, h5, matrixC, 5, ldc, first, last, bias, relu)
                store(l6, h6, matrixC, 6, ldc, first, last, bias, relu)
                store(l7, h7, matrixC, 7, ldc, first, last, bias, relu)
            } else {
                // Edge tile: spill the accumulators to the 8 x 32 scratch tile, then add lane by lane.
                let edgeTarget = UnsafeMutableRawPointer(edge)
                edgeTarget.storeBytes(of: l0, toByteOffset: 0, as: SIMD16<Float>.self)
                edgeTarget.storeBytes(of: h0, toByteOffset: 64, as: SIMD16<Float>.self)
                edgeTarget.storeBytes(of: l1, toByteOffset: 128, as: SIMD16<Float>.self)
                edgeTarget.storeBytes(of: h1, toByteOffset: 192, as: SIMD16<Float>.self)
                edgeTarget.storeBytes(of: l2, toByteOffset: 256, as: SIMD16<Float>.self)
                edgeTarget.storeBytes(of: h2, toByteOffset: 320, as: SIMD16<Float>.self)
                edgeTarget.storeBytes(of: l3, toByteOffset: 384, as: SIMD16<Float>.self)
                edgeTarget.storeBytes(of: h3, toByteOffset: 448, as: SIMD16<Float>.self)
                edgeTarget.storeBytes(of: l4, toByteOffset: 512, as: SIMD16<Float>.self)
                edgeTarget.storeBytes(of: h4, toByteOffset: 576, as: SIMD16<Float>.self)
                edgeTarget.storeBytes(of: l5, toByteOffset: 640, as: SIMD16<Float>.self)
                edgeTarget.storeBytes(of: h5, toByteOffset: 704, as: SIMD16<Float>.self)
                edgeTarget.storeBytes(of: l6, toByteOffset: 768, as: SIMD16<Float>.self)
                edgeTarget.storeBytes(of: h6, toByteOffset: 832, as: SIMD16<Float>.self)
                edgeTarget.storeBytes(of: l7, toByteOffset: 896, as: SIMD16<Float>.self)
                edgeTarget.storeBytes(of: h7, toByteOffset: 960, as: SIMD16<Float>.self)
                addEdge(edge, matrixC, ldc, first, last, bias, relu, rows: tileRows, cols: cols)
            }
        #endif
    }

    /// Rows `packedRows`...`packedRows` + 3 of an 8-row A panel times 16 columns of B at `rowsB`, over `count`
    /// rows of B (each `bStride` bytes after the last), K rows `rows[0]`, `rows[1]`... (0, 1... if nil): four 16-lane
    /// accumulators (eight 256-bit registers), a B row and a broadcast.
    @_transparent
    static func quarter(
        _ rows: UnsafePointer<Int32>?, _ count: Int, _ packedRows: UnsafePointer<Float>, _ rowsB: UnsafeRawPointer,
        _ bStride: Int
    )
        -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)
    {
        var c0 = SIMD16<Float>()
        var c1 = SIMD16<Float>()
        var c2 = SIMD16<Float>()
        var c3 = SIMD16<Float>()
        var bp = rowsB
        if let rows {
            var (kp, end) = (rows, rows + count)
            while kp < end {
                let ap = packedRows + Int(kp.pointee) * 8
                let rowB = bp.loadUnaligned(as: SIMD16<Float>.self)
                c0.addProduct(SIMD16(repeating: ap[0]), rowB)
                c1.addProduct(SIMD16(repeating: ap[1]), rowB)
                c2.addProduct(SIMD16(repeating: ap[2]), rowB)
                c3.addProduct(SIMD16(repeating: ap[3]), rowB)
                bp += bStride
                kp += 1
            }
        } else {
            // Every row: a loop without a list (reading a list of every row was slower; the same loop with
            // the step as a closure kept the accumulators in memory).
            var ap = packedRows
            for _ in 0..<count {
                let rowB = bp.loadUnaligned(as: SIMD16<Float>.self)
                c0.addProduct(SIMD16(repeating: ap[0]), rowB)
                c1.addProduct(SIMD16(repeating: ap[1]), rowB)
                c2.addProduct(SIMD16(repeating: ap[2]), rowB)
                c3.addProduct(SIMD16(repeating: ap[3]), rowB)
                ap += 8
                bp += bStride
            }
        }
        return (c0, c1, c2, c3)
    }

    /// One row of 16 into C at `p`: stored plus `bias` for the first K block, added otherwise; ReLU
    /// after the last.
    @_transparent
    static func storeRow(
        _ values: SIMD16<Float>, _ target: UnsafeMutablePointer<Float>, _ first: Bool, _ last: Bool,
        _ bias: Float?, _ relu: Bool
    ) {
        let raw = UnsafeMutableRawPointer(target)
        var result = values
        if first {
            if let bias { result += SIMD16(repeating: bias) }
        } else {
            result += raw.loadUnaligned(as: SIMD16<Float>.self)
        }
        if last && relu { result = result.replacing(with: 0, where: result .< 0) }
        raw.storeBytes(of: result, as: SIMD16<Float>.self)
    }

    /// The last few columns of a panel (at most 8) over 8 rows: vectors run down A's packed 8 rows
    /// and B's values are broadcast, so a step of K costs 8 multiply-adds (of 8 lanes) instead of a
    /// full tile's 16. B's packed row is zero past `cols`. Kept out of `run` (it is rare; see `tile`).
    @inline(never)
    static func thinTile(
        _ kb: Int, _ packedRows: UnsafePointer<Float>, _ rowsB: UnsafeRawPointer, _ bStride: Int,
        _ matrixC: UnsafeMutablePointer<Float>, _ ldc: Int, _ first: Bool, _ last: Bool,
        _ bias: UnsafePointer<Float>?, _ relu: Bool, rows: Int, cols: Int,
        skip: Keep, edge: UnsafeMutablePointer<Float>
    ) {
        var c0 = SIMD8<Float>()
        var c1 = SIMD8<Float>()
        var c2 = SIMD8<Float>()
        var c3 = SIMD8<Float>()
        var c4 = SIMD8<Float>()
        var c5 = SIMD8<Float>()
        var c6 = SIMD8<Float>()
        var c7 = SIMD8<Float>()
        var ap = UnsafeRawPointer(packedRows)
        var bp = rowsB
        /// `count` iterations, each adding A's 8 rows at `ap` times 4 B values at `bp` into c0...c3, and
        /// A's rows `aNext` bytes on times 4 B values `bNext` bytes on into c4...c7.
        func steps(_ count: Int, aNext: Int, bNext: Int, aStep: Int, bStep: Int) {
            for _ in 0..<count {
                let (lowRows, highRows, bq) = (
                    ap.loadUnaligned(as: SIMD8<Float>.self),
                    ap.loadUnaligned(fromByteOffset: aNext, as: SIMD8<Float>.self), bp + bNext
                )
                c0 = c0.addingProduct(lowRows, SIMD8(repeating: bp.load(fromByteOffset: 0, as: Float.self)))
                c1 = c1.addingProduct(lowRows, SIMD8(repeating: bp.load(fromByteOffset: 4, as: Float.self)))
                c2 = c2.addingProduct(lowRows, SIMD8(repeating: bp.load(fromByteOffset: 8, as: Float.self)))
                c3 = c3.addingProduct(lowRows, SIMD8(repeating: bp.load(fromByteOffset: 12, as: Float.self)))
                c4 = c4.addingProduct(highRows, SIMD8(repeating: bq.load(fromByteOffset: 0, as: Float.self)))
                c5 = c5.addingProduct(highRows, SIMD8(repeating: bq.load(fromByteOffset: 4, as: Float.self)))
                c6 = c6.addingProduct(highRows, SIMD8(repeating: bq.load(fromByteOffset: 8, as: Float.self)))
                c7 = c7.addingProduct(highRows, SIMD8(repeating: bq.load(fromByteOffset: 12, as: Float.self)))
                ap += aStep
                bp += bStep
            }
        }
        // Eight multiply-adds in flight per iteration (four chains alone would each wait on the previous
        // one's latency): columns 0-7 of one K step, or, for at most 4 columns, columns 0-3 of two K
        // steps (the odd one's summed in after). An odd last step then runs as a full one, whose columns
        // past `cols` are not stored.
        let pairs = cols <= 4 ? kb / 2 : 0
        steps(pairs, aNext: 32, bNext: bStride, aStep: 64, bStep: 2 * bStride)
        if cols <= 4 { (c0, c1, c2, c3) = (c0 + c4, c1 + c5, c2 + c6, c3 + c7) }
        steps(kb - 2 * pairs, aNext: 0, bNext: 16, aStep: 32, bStep: bStride)
        // Column j (c_j, down the rows) into the edge tile's [row][column] layout; skipped columns add nothing.
        func put(_ columnIndex: Int, _ column: SIMD8<Float>) {
            guard columnIndex < cols else { return }
            let skipped = skip.0[columnIndex] == 0
            for r in 0..<8 { edge[r * nr + columnIndex] = skipped ? 0 : column[r] }
        }
        put(0, c0)
        put(1, c1)
        put(2, c2)
        put(3, c3)
        put(4, c4)
        put(5, c5)
        put(6, c6)
        put(7, c7)
        addEdge(edge, matrixC, ldc, first, last, bias, relu, rows: rows, cols: cols)
    }

    /// The first 16 columns of a panel over 8 rows, stored into the first `rows` x `cols` of C: one
    /// vector per row, so half a tile's multiply-adds. Kept out of `run` (it is rare; see `tile`).
    @inline(never)
    static func halfTile(
        _ rows: UnsafePointer<Int32>?, _ count: Int, _ packedRows: UnsafePointer<Float>, _ rowsB: UnsafeRawPointer,
        _ bStride: Int,
        _ matrixC: UnsafeMutablePointer<Float>, _ ldc: Int, _ first: Bool, _ last: Bool,
        _ bias: UnsafePointer<Float>?, _ relu: Bool, rows tileRows: Int, cols: Int,
        skip: SIMD16<UInt32>, edge: UnsafeMutablePointer<Float>
    ) {
        #if DENSEKIT_AVX512
            var l0 = SIMD16<Float>()
            var l1 = SIMD16<Float>()
            var l2 = SIMD16<Float>()
            var l3 = SIMD16<Float>()
            var l4 = SIMD16<Float>()
            var l5 = SIMD16<Float>()
            var l6 = SIMD16<Float>()
            var l7 = SIMD16<Float>()
            var bp = rowsB
            for i in 0..<count {
                let ap = packedRows + (rows.map { Int($0[i]) } ?? i) * 8
                let rowB = bp.loadUnaligned(as: SIMD16<Float>.self)
                bp += bStride
                l0.addProduct(SIMD16(repeating: ap[0]), rowB)
                l1.addProduct(SIMD16(repeating: ap[1]), rowB)
                l2.addProduct(SIMD16(repeating: ap[2]), rowB)
                l3.addProduct(SIMD16(repeating: ap[3]), rowB)
                l4.addProduct(SIMD16(repeating: ap[4]), rowB)
                l5.addProduct(SIMD16(repeating: ap[5]), rowB)
                l6.addProduct(SIMD16(repeating: ap[6]), rowB)
                l7.addProduct(SIMD16(repeating: ap[7]), rowB)
            }
        #else
            // Two 4-row quarters: 16 accumulators of 256 bits would not fit in AVX2's 16 registers (see `tile`).
            var (l0, l1, l2, l3) = quarter(rows, count, packedRows, rowsB, bStride)
            var (l4, l5, l6, l7) =
                tileRows > 4
                ? quarter(rows, count, packedRows + 4, rowsB, bStride) : (SIMD16(), SIMD16(), SIMD16(), SIMD16())
        #endif
        l0.keep(skip)
        l1.keep(skip)
        l2.keep(skip)
        l3.keep(skip)
        l4.keep(skip)
        l5.keep(skip)
        l6.keep(skip)
        l7.keep(skip)
        let full = tileRows == 8 && cols == 16
        let edgeTarget = UnsafeMutableRawPointer(edge)
        /// Row r into C (a whole row of 16), or into the edge tile.
        @inline(__always) func put(_ rowB: SIMD16<Float>, _ row: Int) {
            guard full else {
                return edgeTarget.storeBytes(of: rowB, toByteOffset: row * nr * 4, as: SIMD16<Float>.self)
            }
            storeRow(rowB, matrixC + row * ldc, first, last, bias?[row], relu)
        }
        put(l0, 0)
        put(l1, 1)
        put(l2, 2)
        put(l3, 3)
        put(l4, 4)
        put(l5, 5)
        put(l6, 6)
        put(l7, 7)
        if !full { addEdge(edge, matrixC, ldc, first, last, bias, relu, rows: tileRows, cols: cols) }
    }

    /// Adds the first `rows` x `cols` of the 8 x 32 `edge` tile into C (or, for the first K block,
    /// stores it plus the bias), lane by lane, with the ReLU after the last K block.
    @inline(__always)
    static func addEdge(
        _ edge: UnsafeMutablePointer<Float>, _ matrixC: UnsafeMutablePointer<Float>, _ ldc: Int, _ first: Bool,
        _ last: Bool,
        _ bias: UnsafePointer<Float>?, _ relu: Bool, rows: Int, cols: Int
    ) {
        for r in 0..<rows {
            let row = matrixC + r * ldc
            for j in 0..<cols {
                var value = edge[r * nr + j]
                if first {
                    if let bias { value += bias[r] }
                } else {
                    value += row[j]
                }
                if last && relu && value < 0 { value = 0 }
                row[j] = value
            }
        }
    }

    /// Row r of a full 8 x 32 tile into C: `storeRow`'s steps for two vectors, written out rather than
    /// calling it twice (a helper shared with the half tile, tried, left `tile`'s SIMD loads and stores
    /// as calls).
    @_transparent
    static func store(
        _ lo: SIMD16<Float>, _ hi: SIMD16<Float>, _ matrixC: UnsafeMutablePointer<Float>, _ row: Int, _ ldc: Int,
        _ first: Bool, _ last: Bool, _ bias: UnsafePointer<Float>?, _ relu: Bool
    ) {
        let target = UnsafeMutableRawPointer(matrixC + row * ldc)
        var low = lo
        var high = hi
        if first {
            if let bias {
                let biasVector = SIMD16<Float>(repeating: bias[row])
                low += biasVector
                high += biasVector
            }
        } else {
            low += target.loadUnaligned(as: SIMD16<Float>.self)
            high += target.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
        }
        if last && relu {
            low = low.replacing(with: 0, where: low .< 0)
            high = high.replacing(with: 0, where: high .< 0)
        }
        target.storeBytes(of: low, as: SIMD16<Float>.self)
        target.storeBytes(of: high, toByteOffset: 64, as: SIMD16<Float>.self)
    }
}

extension SIMD16 where Scalar == Float {
    @inline(__always) mutating func addProduct(_ first: SIMD16<Float>, _ second: SIMD16<Float>) {
        self = self.addingProduct(first, second)
    }

    /// Zeroes the lanes whose `mask` is zero (a bitwise and: lanes that are kept stay bit for bit).
    @_transparent mutating func keep(_ mask: SIMD16<UInt32>) {
        self = unsafeBitCast(unsafeBitCast(self, to: SIMD16<UInt32>.self) & mask, to: SIMD16<Float>.self)
    }
}
