/// A dense layer's 3x3 "same" convolution (stride 1, padding 1) by Winograd's F(4x4, 3x3)
/// (`WinogradTransform`, m = 4): per tile of m x m outputs, alpha^2 = (m + 2)^2 = 36 products per
/// input channel instead of 9 m^2 = 144.
///
/// Fitted to the executor's block layout. The map's tiles are cut into panels of 32 (two SIMD vectors
/// of 16 lanes, each lane one tile); each panel is one unit of work, done by one thread start to end
/// while its data stays in L2 (about 0.7 MB for 128 input channels), except the panels left over
/// after every thread has the same number: those are done by all threads, each step split among them
/// (a 56 px map has 7 panels: on 2 threads the 7th took a thread as long as the other 3 did):
/// 1. the input transform B^T d B of every input channel's tiles, into alpha^2 matrices
///    V[position][channel][tile] (one 32-column GEMM panel each);
/// 2. alpha^2 GEMMs M = U V (U: the transformed filters, `WinogradWeights`, outputs x channels), each
///    one register tile wide: for 32 outputs and 128 channels, 4 tiles of 8 x 32 over K = 128;
/// 3. the output transform A^T M A of every output's tiles, plus the bias, written into the output
///    planes' images (rows `width` apart), only inside the image.
/// A vector holds 16 tiles of one tile row, or several short tile rows side by side with a lane
/// between them (a 28 px map has rows of 7 tiles: two to a vector), or none where the column after a
/// row's last tile is past the image (a 14 px map: four rows of 4 tiles fill one vector, a panel of
/// one vector, whose GEMMs are 8 x 16 register tiles). Each input row of a vector's tiles is loaded
/// straight from the image, zero outside it, and split into m phases (column x to phase x mod m) with
/// SIMD shuffles, so the transforms' vectors read consecutive floats. (Copied first into a staging row,
/// zero-padded, it was measured slower.)
/// Exact in real arithmetic; in float32 the transforms' coefficients (up to 8 and 1/24) add rounding error.
public enum WinogradConvolution {
    /// Tiles per panel: the GEMM's register tile width, two vectors.
    static let panelTiles = GEMM.nr

    /// Tiles of one tile row in a vector: lanes `entry`..<`entry + count`, whose input rows start at
    /// entry `entry` of the vector's window (`VectorLayout`) and take `reach` entries. Each tile reads
    /// its own entry and the next (its input columns m and m + 1), so a vector holding several rows
    /// leaves one lane between them (`reach` = count + 1), unless those columns of a row's last tile are
    /// past the image (`reach` = count): the tile then reads the next row's first entry instead (or,
    /// after a vector's last row, a window float no load brings: zero), whose column 0 is
    /// padding (zero, as column m should be) and whose column 1 reaches only the tile's last output
    /// column (input column m + 1 appears only in B^T's last row, and M's last column only in A^T's),
    /// which is past the image and not written.
    struct Piece {
        let tileRow: Int, firstTile: Int, count: Int, entry: Int, reach: Int
    }

    /// One load of a vector's input row (`VectorLayout`'s window): its floats 16 `vector`..<16 `vector` + 16,
    /// from the image row of tile row `tileRow` at column `column` for lane 0, the lanes of `keep`
    /// (all ones) inside both the piece and the image, the others zero.
    struct WindowLoad {
        let vector: Int, tileRow: Int, column: Int, keep: SIMD16<UInt32>
    }

    /// One vector's tiles and the loads of its input rows: one per window vector (`first`, window
    /// vector k's at k; none there keeps no lanes), then any others (`more`: several pieces in one
    /// window vector, where a piece's floats do not start at a multiple of 16). Views into
    /// `VectorLayout`'s arrays: the panels' loops touch no reference-counted storage.
    struct Lanes {
        let pieces: UnsafeBufferPointer<Piece>, first: UnsafeBufferPointer<WindowLoad>,
            more: UnsafeBufferPointer<WindowLoad>
        /// Whether every load of every input row inside the image may be made as one vector load
        /// (`VectorLayout.isWhole`).
        let whole: Bool
    }

    /// The vectors of an h x w map's tiles: every vector's pieces, one after another, and each vector's
    /// range of them; the same for the loads of their input rows. Panels are vectors 2p and 2p + 1.
    ///
    /// A vector's input row (one of a tile's alpha rows, for all its tiles) is a window of 5 vectors of
    /// floats: a piece's tiles read floats `entry` m... (the tile at entry e reads floats e m..<e m + m + 2,
    /// its columns, from the column before its first), and only entry 16's first two floats lie past 64.
    struct VectorLayout {
        var pieces: [Piece] = [], vectors: [Range<Int>] = []
        var loads: [WindowLoad] = [], vectorLoads: [Range<Int>] = []
        let height: Int, width: Int, outputSide: Int
        static let windowVectors = 5

        /// Whether rows of `tileColumns` tiles of `m` columns share a vector with no lane between them:
        /// the entry after a row's last tile starts at column tileColumns * m - 1, past a `width`-wide image.
        static func packsRowsTight(tileColumns: Int, outputSide: Int, width: Int) -> Bool {
            tileColumns < 16 && tileColumns * outputSide - 1 >= width
        }

        init(height: Int, width: Int, outputSide: Int) {
            (self.height, self.width, self.outputSide) = (height, width, outputSide)
            let tileRows = (height + outputSide - 1) / outputSide
            let tileColumns = (width + outputSide - 1) / outputSide
            let tight = Self.packsRowsTight(tileColumns: tileColumns, outputSide: outputSide, width: width)
            func add(_ vector: [Piece]) {
                vectors.append(pieces.count..<pieces.count + vector.count)
                pieces += vector
                // Lanes' `first`, then `more`.
                var first = (0..<Self.windowVectors).map {
                    WindowLoad(vector: $0, tileRow: 0, column: 0, keep: SIMD16())
                }
                var more: [WindowLoad] = []
                // A slot is free while its load keeps no lanes (`windowLoads` makes none such).
                for load in vector.flatMap({ Self.windowLoads($0, outputSide: outputSide, width: width) }) {
                    if first[load.vector].keep == SIMD16() { first[load.vector] = load } else { more.append(load) }
                }
                // A free slot loads what a used one does, its lanes all cleared: it reads no other floats.
                if let used = first.first(where: { $0.keep != SIMD16() }) {
                    for k in first.indices where first[k].keep == SIMD16() {
                        first[k] = WindowLoad(vector: k, tileRow: used.tileRow, column: used.column, keep: SIMD16())
                    }
                }
                vectorLoads.append(loads.count..<loads.count + first.count + more.count)
                loads += first + more
            }
            if tileColumns < 16 {
                let reach = tight ? tileColumns : tileColumns + 1
                let perVector = 16 / reach
                for first in stride(from: 0, to: tileRows, by: perVector) {
                    add(
                        (first..<min(tileRows, first + perVector)).map {
                            Piece(
                                tileRow: $0, firstTile: 0, count: tileColumns, entry: ($0 - first) * reach, reach: reach
                            )
                        })
                }
            } else {
                for row in 0..<tileRows {
                    for first in stride(from: 0, to: tileColumns, by: 16) {
                        let count = min(16, tileColumns - first)
                        add([Piece(tileRow: row, firstTile: first, count: count, entry: 0, reach: count + 1)])
                    }
                }
            }
        }

        var panelCount: Int { (vectors.count + 1) / 2 }

        /// Whether, in each of its tile's alpha input rows that is inside the image, `load`'s 16 floats
        /// are inside the image's h x w floats or at most `margin` floats before or after them.
        func isWhole(_ load: WindowLoad, margin: Int) -> Bool {
            let top = max(0, load.tileRow * outputSide - 1)
            let bottom = min(height - 1, load.tileRow * outputSide + outputSide)
            return top > bottom
                || top * width + load.column >= -margin && bottom * width + load.column + 16 <= height * width + margin
        }

        /// The loads that bring `piece`'s floats of the window (its `reach` entries from `entry`) from
        /// an image row `width` wide: one per window vector it covers, zero outside the image.
        static func windowLoads(_ piece: Piece, outputSide: Int, width: Int) -> [WindowLoad] {
            let first = piece.entry * outputSide
            let end = min(first + piece.reach * outputSide, 16 * windowVectors)
            let x0 = piece.firstTile * outputSide - 1 - first  // the image column of window float f is x0 + f
            return stride(from: first / 16 * 16, to: end, by: 16).compactMap { f0 in
                let lanes = (f0..<f0 + 16).map { f -> UInt32 in
                    (first..<end).contains(f) && (0..<width).contains(x0 + f) ? ~0 : 0
                }
                guard lanes.contains(~0) else { return nil }
                return WindowLoad(vector: f0 / 16, tileRow: piece.tileRow, column: x0 + f0, keep: SIMD16(lanes))
            }
        }
    }

    /// Floats from one position's matrix in V (one panel row per input channel) to the next's, and in
    /// M (one per output, in 8-row tiles): 16 more than the matrix, or consecutive positions would be a
    /// multiple of 4 KB apart and a tile's alpha^2 stores or loads would all fall in one L1 set.
    static func transformedStride(inChannels: Int) -> Int { inChannels * panelTiles + 16 }
    static func productStride(outputTiles: Int) -> Int { outputTiles * 8 * panelTiles + 16 }

    /// One thread's buffers for the panels it does.
    public final class Scratch {
        let transformed: AlignedBuffer, products: AlignedBuffer
        let rows: AlignedBuffer, tile: AlignedBuffer
        /// The last map's `VectorLayout`: a block's layers share it (made anew each layer, it took 0.4%
        /// of a run).
        private var lastLayout: VectorLayout?

        /// The `VectorLayout` of an h x w map's tiles of side m.
        func layout(height: Int, width: Int, outputSide: Int) -> VectorLayout {
            if let cached = lastLayout, (cached.height, cached.width, cached.outputSide) == (height, width, outputSide)
            {
                return cached
            }
            let cached = VectorLayout(height: height, width: width, outputSide: outputSide)
            lastLayout = cached
            return cached
        }

        /// Room for a layer of at most `inChannels` inputs and `outChannels` outputs, with `transform` or a smaller
        /// one.
        public init(_ transform: WinogradTransform, inChannels: Int, outChannels: Int) {
            let (side, outputSide) = (transform.alpha, transform.outputSide)
            let positions = side * side
            transformed = AlignedBuffer(count: positions * transformedStride(inChannels: inChannels))
            products = AlignedBuffer(count: positions * productStride(outputTiles: (outChannels + 7) / 8))
            // The input transform's rows d B: alpha x alpha vectors, then (with AVX2) the alpha input rows
            // split into phases, 6 vectors each.
            rows = AlignedBuffer(count: side * side * 16 + side * 6 * 16)
            // The output transform's vectors (alpha x m, then m x m), a row of output tiles, and the
            // edge tile the GEMM's tile needs.
            tile = AlignedBuffer(
                count: (side * outputSide + outputSide * outputSide) * 16 + 16 * outputSide + 8 * GEMM.nr)
        }

        /// The buffers' memory, for the panels' loops.
        struct Pointers {
            let transformed: UnsafeMutablePointer<Float>, products: UnsafeMutablePointer<Float>
            let rows: UnsafeMutablePointer<Float>, tile: UnsafeMutablePointer<Float>

            /// These working buffers with `other`'s V and M: for threads sharing one panel.
            func sharing(_ other: Pointers) -> Pointers {
                Pointers(transformed: other.transformed, products: other.products, rows: rows, tile: tile)
            }
        }

        var pointers: Pointers {
            Pointers(
                transformed: transformed.pointer, products: products.pointer, rows: rows.pointer, tile: tile.pointer)
        }
    }

    /// Convolves `weights.inChannels` input images (channel c's h x w image from `input + c * inputStride`,
    /// rows `width` apart) into `weights.outChannels` output images (from `output + o * outputStride`),
    /// overwriting them: bias (or zero) plus the convolution. Outside the images nothing is written,
    /// and nothing is read but the `inputMargin` floats before and after each input image, whose
    /// values are not used. With a margin of 15 or more every load is one vector load
    /// (`transformWholeInputs`; faster than lane-by-lane loads at the planes' ends with the loads read
    /// from memory for each row).
    /// `scratch` holds one `Scratch` per thread (at least `threads`), each sized for this layer.
    public static func run(
        _ weights: WinogradWeights, _ input: UnsafePointer<Float>, inputStride: Int, height: Int, width: Int,
        into output: UnsafeMutablePointer<Float>, outputStride: Int, bias: UnsafePointer<Float>?,
        scratch: [Scratch], threads: Int, inputMargin: Int = 0
    ) {
        let layout = scratch[0].layout(height: height, width: width, outputSide: weights.transform.outputSide)
        let parts = min(threads, scratch.count, WorkerPool.maxParts)
        let layer = Layer(
            weights: weights, input: input, inputStride: inputStride, height: height, width: width,
            output: output, outputStride: outputStride, bias: bias)
        let buffers = scratch.prefix(parts).map(\.pointers)
        defer { withExtendedLifetime((weights, scratch)) {} }  // the layer and buffers hold their memory
        layout.pieces.withUnsafeBufferPointer { pieces in
            layout.loads.withUnsafeBufferPointer { loads in
                let lanes = zip(layout.vectors, layout.vectorLoads).map { (vector, own) in
                    let split = own.lowerBound + VectorLayout.windowVectors
                    return Lanes(
                        pieces: UnsafeBufferPointer(rebasing: pieces[vector]),
                        first: UnsafeBufferPointer(rebasing: loads[own.lowerBound..<split]),
                        more: UnsafeBufferPointer(rebasing: loads[split..<own.upperBound]),
                        whole: loads[own].allSatisfy { layout.isWhole($0, margin: inputMargin) })
                }
                lanes.withUnsafeBufferPointer { lanes in
                    func vectors(_ panelIndex: Int) -> UnsafeBufferPointer<Lanes> {
                        UnsafeBufferPointer(rebasing: lanes[2 * panelIndex..<min(lanes.count, 2 * panelIndex + 2)])
                    }
                    let pool = WorkerPool.shared(threads: threads)
                    let whole = layout.panelCount / parts * parts
                    if whole > 0 {
                        pool.run(parts: parts) { part in
                            for panelIndex in stride(from: part, to: whole, by: parts) {
                                layer.panel(vectors(panelIndex), buffers[part])
                            }
                        }
                    }
                    // The panels left over (fewer than the threads: on 2 threads, the 7th of a 56 px map's 7,
                    // or a 14 px map's only one) are each done by all threads, step by step, into the first
                    // thread's V and M.
                    guard whole < layout.panelCount else { return }
                    let shared = buffers.map { $0.sharing(buffers[0]) }
                    let positions = layer.alpha * layer.alpha
                    func share(_ part: Int, _ count: Int) -> Range<Int> {
                        (part * count / parts)..<((part + 1) * count / parts)
                    }
                    for p in whole..<layout.panelCount {
                        let panelVectors = vectors(p)
                        pool.run(parts: parts) {
                            layer.transformInputs(panelVectors, channels: share($0, layer.inChannels), shared[$0])
                        }
                        pool.run(parts: parts) {
                            layer.multiply(
                                positions: share($0, positions), columns: 16 * panelVectors.count, shared[$0])
                        }
                        pool.run(parts: parts) {
                            layer.transformOutputs(panelVectors, outputs: share($0, layer.outChannels), shared[$0])
                        }
                    }
                }
            }
        }
    }

    /// One layer's operands, and the three steps on one panel. Only numbers and pointers: nothing in
    /// a panel retains or releases (`run` keeps the filters and the scratch buffers alive).
    struct Layer {
        let outputSide: Int, alpha: Int, inChannels: Int, outChannels: Int, tiles: Int
        /// `transformedStride` and `productStride` for this layer.
        let vStride: Int, mStride: Int
        let filters: UnsafePointer<Float>
        let input: UnsafePointer<Float>, inputStride: Int, height: Int, width: Int
        let output: UnsafeMutablePointer<Float>, outputStride: Int
        let bias: UnsafePointer<Float>?

        init(
            weights: WinogradWeights, input: UnsafePointer<Float>, inputStride: Int, height: Int, width: Int,
            output: UnsafeMutablePointer<Float>, outputStride: Int, bias: UnsafePointer<Float>?
        ) {
            (outputSide, alpha) = (weights.transform.outputSide, weights.transform.alpha)
            (inChannels, outChannels, tiles) = (weights.inChannels, weights.outChannels, weights.tiles)
            vStride = WinogradConvolution.transformedStride(inChannels: inChannels)
            mStride = WinogradConvolution.productStride(outputTiles: tiles)
            filters = UnsafePointer(weights.storage.pointer)
            (self.input, self.inputStride, self.height, self.width) = (input, inputStride, height, width)
            (self.output, self.outputStride, self.bias) = (output, outputStride, bias)
        }

        /// Position `position`'s filters for outputs 8 tile..<8 tile + 8, packed as the GEMM's A.
        @inline(__always) func filterPanel(_ position: Int, _ tile: Int) -> UnsafePointer<Float> {
            filters + (position * tiles + tile) * inChannels * 8
        }

        /// The three steps on one panel, by one thread.
        func panel(_ vectors: UnsafeBufferPointer<Lanes>, _ scratch: Scratch.Pointers) {
            transformInputs(vectors, channels: 0..<inChannels, scratch)
            multiply(positions: 0..<alpha * alpha, columns: 16 * vectors.count, scratch)
            transformOutputs(vectors, outputs: 0..<outChannels, scratch)
        }

        /// Step 1 for input channels `channels`: their rows of every position's matrix in V.
        func transformInputs(_ vectors: UnsafeBufferPointer<Lanes>, channels: Range<Int>, _ scratch: Scratch.Pointers) {
            for (v, lanes) in vectors.enumerated() {
                if lanes.whole {
                    transformWholeInputs(channels, lanes, slot: v * 16, scratch)
                } else {
                    for c in channels { transformInput(c, lanes, slot: v * 16, scratch) }
                }
            }
        }

        /// Step 2 for `positions`: M[position] = U[position] V[position], 8 x 32 register tiles over
        /// K = all input channels, or 8 x 16 for a panel of one vector (`columns` 16: V's other 16
        /// columns hold whatever they held, and M's columns there are neither computed nor read).
        func multiply(positions: Range<Int>, columns: Int, _ scratch: Scratch.Pointers) {
            let (depth, transformedBase, mp) = (inChannels, scratch.transformed, scratch.products)
            let edge = scratch.tile + (alpha * outputSide + outputSide * outputSide) * 16 + 16 * outputSide
            for position in positions {
                let rowsB = UnsafeRawPointer(transformedBase + position * vStride)
                for tile in 0..<tiles {
                    let productTile = mp + position * mStride + tile * 8 * panelTiles
                    if columns == 16 {
                        GEMM.halfTile(
                            nil, depth, filterPanel(position, tile), rowsB, panelTiles * 4, productTile, panelTiles,
                            true, true, nil,
                            false,
                            rows: 8, cols: 16, skip: GEMM.keepAll.0, edge: edge)
                    } else {
                        GEMM.tile(
                            nil, depth, filterPanel(position, tile), rowsB, panelTiles * 4, productTile, panelTiles,
                            true, true, nil,
                            false,
                            rows: 8, cols: panelTiles, skip: GEMM.keepAll, edge: edge)
                    }
                }
            }
        }

        /// Step 3 for `outputs`: their tiles from M into the output images.
        func transformOutputs(_ vectors: UnsafeBufferPointer<Lanes>, outputs: Range<Int>, _ scratch: Scratch.Pointers) {
            for o in outputs {
                for (v, lanes) in vectors.enumerated() { transformOutput(o, lanes, slot: v * 16, scratch) }
            }
        }

        /// B^T d B for input channel `c`'s tiles in `lanes` into columns `slot`..<`slot + 16` of every
        /// position's row c of V, each load made with `windowVector`'s care at the plane's ends.
        @inline(__always)
        func transformInput(_ channel: Int, _ lanes: Lanes, slot: Int, _ scratch: Scratch.Pointers) {
            let plane = input + channel * inputStride
            let planeFloats = height * width
            let firstLoads = lanes.first
            @inline(__always) func load(_ windowLoad: WindowLoad, _ row: Int) -> SIMD16<Float> {
                let imageRow = windowLoad.tileRow * outputSide - 1 + row
                guard imageRow >= 0 && imageRow < height else { return SIMD16() }
                return windowVector(
                    plane, at: imageRow * width + windowLoad.column, keep: windowLoad.keep, planeFloats: planeFloats)
            }
            transformInput(
                channel, lanes, slot: slot, scratch,
                first: { r in
                    (
                        load(firstLoads[0], r), load(firstLoads[1], r), load(firstLoads[2], r), load(firstLoads[3], r),
                        load(firstLoads[4], r)
                    )
                }, load: load)
        }

        /// `transformInput` for every channel of `channels`, for a vector whose loads are all whole
        /// (`VectorLayout.isWhole`): plain vector loads, with the `first` loads' rows, columns and lanes
        /// kept in registers across the channels.
        func transformWholeInputs(_ channels: Range<Int>, _ lanes: Lanes, slot: Int, _ scratch: Scratch.Pointers) {
            let firstLoads = lanes.first
            let (t0, t1, t2, t3, t4) = (
                firstLoads[0].tileRow * outputSide - 1, firstLoads[1].tileRow * outputSide - 1,
                firstLoads[2].tileRow * outputSide - 1, firstLoads[3].tileRow * outputSide - 1,
                firstLoads[4].tileRow * outputSide - 1
            )
            let (x0, x1, x2, x3, x4) = (
                firstLoads[0].column, firstLoads[1].column, firstLoads[2].column, firstLoads[3].column,
                firstLoads[4].column
            )
            let (k0, k1, k2, k3, k4) = (
                firstLoads[0].keep, firstLoads[1].keep, firstLoads[2].keep, firstLoads[3].keep, firstLoads[4].keep
            )
            for c in channels {
                let plane = UnsafeRawPointer(input + c * inputStride)
                /// Image row `top + row` from `column` (zero outside the image's rows), its lanes `keepLanes`.
                @inline(__always) func load(_ top: Int, _ column: Int, _ keepLanes: SIMD16<UInt32>, _ row: Int)
                    -> SIMD16<Float>
                {
                    let imageRow = top + row
                    guard imageRow >= 0 && imageRow < height else { return SIMD16() }
                    var vector = plane.loadUnaligned(
                        fromByteOffset: (imageRow * width + column) * 4, as: SIMD16<Float>.self)
                    vector.keep(keepLanes)
                    return vector
                }
                transformInput(
                    c, lanes, slot: slot, scratch,
                    first: { r in
                        (
                            load(t0, x0, k0, r), load(t1, x1, k1, r), load(t2, x2, k2, r), load(t3, x3, k3, r),
                            load(t4, x4, k4, r)
                        )
                    }
                ) { l, r in load(l.tileRow * outputSide - 1, l.column, l.keep, r) }
            }
        }

        /// The transform of channel `c`'s tiles in `lanes`: each of the alpha input rows r is its
        /// window, the `first` loads (`first(r)`) merged with the `more` ones (`load(l, r)`), split into m phases
        /// (float e m + p to lane e of phase p) with SIMD
        /// shuffles and transformed along the row (tile t's column q is lane t of phase q, or for q = m
        /// and m + 1, lane t + 1 of phases 0 and 1); then down the columns into V.
        @inline(__always)
        func transformInput(
            _ channel: Int, _ lanes: Lanes, slot: Int, _ scratch: Scratch.Pointers,
            first: (Int) -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>),
            load: (WindowLoad, Int) -> SIMD16<Float>
        ) {
            let side = alpha
            let rows = UnsafeMutableRawPointer(scratch.rows)  // d B: row r's alpha vectors
            /// Input row r's window split into phases: d(0)...d(5) of the transform along the row.
            @inline(__always) func rowInputs(_ inputRow: Int) -> (
                SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>
            ) {
                var (w0, w1, w2, w3, w4) = first(inputRow)
                for l in lanes.more {
                    let loaded = load(l, inputRow)
                    switch l.vector {
                    case 0: w0 = merged(w0, loaded)
                    case 1: w1 = merged(w1, loaded)
                    case 2: w2 = merged(w2, loaded)
                    case 3: w3 = merged(w3, loaded)
                    default: w4 = merged(w4, loaded)
                    }
                }
                let (p0, p1, p2, p3) = phases(w0, w1, w2, w3)
                return (p0, p1, p2, p3, shiftedByOne(p0, w4), shiftedByOne(p1, SIMD16(repeating: w4[1])))
            }
            #if !DENSEKIT_AVX512
                // Split first for all rows, kept in memory, then transformed: with 256-bit registers (AVX2)
                // LLVM turned the transform of the shuffles' results into scalar code.
                let split = rows + side * side * 64
                for r in 0..<side {
                    let (d0, d1, d2, d3, d4, d5) = rowInputs(r)
                    let splitRow = split + r * 6 * 64
                    splitRow.storeBytes(of: d0, as: SIMD16<Float>.self)
                    splitRow.storeBytes(of: d1, toByteOffset: 64, as: SIMD16<Float>.self)
                    splitRow.storeBytes(of: d2, toByteOffset: 128, as: SIMD16<Float>.self)
                    splitRow.storeBytes(of: d3, toByteOffset: 192, as: SIMD16<Float>.self)
                    splitRow.storeBytes(of: d4, toByteOffset: 256, as: SIMD16<Float>.self)
                    splitRow.storeBytes(of: d5, toByteOffset: 320, as: SIMD16<Float>.self)
                }
                for r in 0..<side {
                    let splitRow = UnsafeRawPointer(split + r * 6 * 64)
                    let row = rows + r * side * 64
                    inputTransform({ splitRow.load(fromByteOffset: $0 * 64, as: SIMD16<Float>.self) }) {
                        row.storeBytes(of: $1, toByteOffset: $0 * 64, as: SIMD16<Float>.self)
                    }
                }
            #else
                for r in 0..<side {
                    let (d0, d1, d2, d3, d4, d5) = rowInputs(r)
                    let row = rows + r * side * 64
                    inputTransform(d0, d1, d2, d3, d4, d5) {
                        row.storeBytes(of: $1, toByteOffset: $0 * 64, as: SIMD16<Float>.self)
                    }
                }
            #endif
            let target = UnsafeMutableRawPointer(scratch.transformed + channel * panelTiles + slot)
            let done = UnsafeRawPointer(rows)
            for kc in 0..<side {
                inputTransform(
                    { done.load(fromByteOffset: ($0 * side + kc) * 64, as: SIMD16<Float>.self) },
                    { target.storeBytes(of: $1, toByteOffset: ($0 * side + kc) * vStride * 4, as: SIMD16<Float>.self) })
            }
        }

        /// The 16 floats of `plane` from `at`, zero in the lanes `keep` leaves out. Those that `keep`
        /// keeps are inside the plane (`planeFloats` long); the others are read only where the whole
        /// vector is (the first row's column -1 and the last row's columns past the image are not).
        @inline(__always)
        func windowVector(_ plane: UnsafePointer<Float>, at: Int, keep: SIMD16<UInt32>, planeFloats: Int) -> SIMD16<
            Float
        > {
            var vector = SIMD16<Float>()
            if at >= 0 && at + 16 <= planeFloats {
                vector = UnsafeRawPointer(plane + at).loadUnaligned(as: SIMD16<Float>.self)
            } else {
                for i in 0..<16 where keep[i] != 0 { vector[i] = plane[at + i] }
            }
            vector.keep(keep)
            return vector
        }

        /// A^T M A plus the bias for output `o`'s tiles in `lanes` (columns `slot`... of M), written into its image.
        @inline(__always)
        func transformOutput(_ outputChannel: Int, _ lanes: Lanes, slot: Int, _ scratch: Scratch.Pointers) {
            let side = alpha
            let ld = mStride * 4
            let base = UnsafeRawPointer(scratch.products + outputChannel * panelTiles + slot)
            let half = UnsafeMutableRawPointer(scratch.tile)  // alpha x m vectors: M A
            let result = half + side * outputSide * 64  // m x m vectors: A^T M A
            let row = (result + outputSide * outputSide * 64).assumingMemoryBound(to: Float.self)
            let biasVector = SIMD16<Float>(repeating: bias?[outputChannel] ?? 0)
            for kr in 0..<side {
                outputTransform(
                    { base.load(fromByteOffset: (kr * side + $0) * ld, as: SIMD16<Float>.self) },
                    { half.storeBytes(of: $1, toByteOffset: (kr * outputSide + $0) * 64, as: SIMD16<Float>.self) })
            }
            for j in 0..<outputSide {
                outputTransform(
                    { half.load(fromByteOffset: ($0 * outputSide + j) * 64, as: SIMD16<Float>.self) },
                    {
                        result.storeBytes(
                            of: $1 + biasVector, toByteOffset: ($0 * outputSide + j) * 64, as: SIMD16<Float>.self)
                    })
            }
            // Output row r of every tile: lane t's m values to floats t * m..., then each piece's part to its image
            // row.
            let plane = output + outputChannel * outputStride
            for r in 0..<outputSide {
                let resultRow = UnsafeRawPointer(result + r * outputSide * 64)
                let out = UnsafeMutableRawPointer(row)
                let (y0, y1, y2, y3) = (
                    resultRow.load(as: SIMD16<Float>.self), resultRow.load(fromByteOffset: 64, as: SIMD16<Float>.self),
                    resultRow.load(fromByteOffset: 128, as: SIMD16<Float>.self),
                    resultRow.load(fromByteOffset: 192, as: SIMD16<Float>.self)
                )
                out.storeBytes(of: interleave(y0, y1, y2, y3, 0), as: SIMD16<Float>.self)
                out.storeBytes(of: interleave(y0, y1, y2, y3, 1), toByteOffset: 64, as: SIMD16<Float>.self)
                out.storeBytes(of: interleave(y0, y1, y2, y3, 2), toByteOffset: 128, as: SIMD16<Float>.self)
                out.storeBytes(of: interleave(y0, y1, y2, y3, 3), toByteOffset: 192, as: SIMD16<Float>.self)
                for piece in lanes.pieces {
                    let iy = piece.tileRow * outputSide + r
                    let x0 = piece.firstTile * outputSide
                    guard iy < height else { continue }
                    (plane + iy * width + x0).update(
                        from: row + piece.entry * outputSide, count: min(piece.count * outputSide, width - x0))
                }
            }
        }
    }

    // MARK: the 1-D transforms, unrolled (the matrices are `WinogradTransform`'s)

    /// B^T d for d = d(0)..<d(alpha), out(i, (B^T d)[i]).
    @inline(__always)
    static func inputTransform(_ inputAt: (Int) -> SIMD16<Float>, _ out: (Int, SIMD16<Float>) -> Void) {
        inputTransform(inputAt(0), inputAt(1), inputAt(2), inputAt(3), inputAt(4), inputAt(5), out)
    }

    @inline(__always)
    static func inputTransform(
        _ d0: SIMD16<Float>, _ d1: SIMD16<Float>, _ d2: SIMD16<Float>, _ d3: SIMD16<Float>,
        _ d4: SIMD16<Float>, _ d5: SIMD16<Float>, _ out: (Int, SIMD16<Float>) -> Void
    ) {
        // B^T rows: [4 0 -5 0 1 0] [0 -4 -4 1 1 0] [0 4 -4 -1 1 0] [0 -2 -1 2 1 0] [0 2 -1 -2 1 0] [0 4 0 -5 0 1]
        // Multiply-adds fused (one rounding each): fewer instructions, no less accurate.
        let evenSum = d4.addingProduct(-4, d2)
        let oddSum = d3.addingProduct(-4, d1)
        let evenDifference = d4 - d2
        let oddDifference = (d3 - d1) + (d3 - d1)
        out(0, d4.addingProduct(-5, d2).addingProduct(4, d0))
        out(1, evenSum + oddSum)
        out(2, evenSum - oddSum)
        out(3, evenDifference + oddDifference)
        out(4, evenDifference - oddDifference)
        out(5, d5.addingProduct(-5, d3).addingProduct(4, d1))
    }

    /// A^T x for x = x(0)..<x(alpha), out(i, (A^T x)[i]).
    @inline(__always)
    static func outputTransform(_ inputAt: (Int) -> SIMD16<Float>, _ out: (Int, SIMD16<Float>) -> Void) {
        // A^T rows: [1 1 1 1 1 0] [0 1 -1 2 -2 0] [0 1 1 4 4 0] [0 1 -1 8 -8 1]
        let (x0, x1, x2, x3, x4, x5) = (inputAt(0), inputAt(1), inputAt(2), inputAt(3), inputAt(4), inputAt(5))
        let sum12 = x1 + x2
        let difference12 = x1 - x2
        let sum34 = x3 + x4
        let difference34 = x3 - x4
        out(0, x0 + sum12 + sum34)
        out(1, difference12.addingProduct(2, difference34))
        out(2, sum12.addingProduct(4, sum34))
        out(3, (difference12 + x5).addingProduct(8, difference34))
    }

    // MARK: shuffles (constant lanes: each compiles to a few permutes)

    /// The 64 floats first, second, third, fourth split into 4 phases: phase p holds floats p, p + 4, p + 8, ... In two
    /// steps of two-vector shuffles (8 in all): phases 0 and 1, and 2 and 3, of a and b and of c and d,
    /// then their halves joined.
    @inline(__always)
    static func phases(_ first: SIMD16<Float>, _ second: SIMD16<Float>, _ third: SIMD16<Float>, _ fourth: SIMD16<Float>)
        -> (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)
    {
        let (ab01, ab23, cd01, cd23) = (
            twoPhases(first, second, 0), twoPhases(first, second, 2), twoPhases(third, fourth, 0),
            twoPhases(third, fourth, 2)
        )
        return (halves(ab01, cd01, 0), halves(ab01, cd01, 8), halves(ab23, cd23, 0), halves(ab23, cd23, 8))
    }

    /// Phase `phase` of the 32 floats first, second (8 lanes), then phase `phase` + 1.
    @inline(__always)
    static func twoPhases(_ first: SIMD16<Float>, _ second: SIMD16<Float>, _ phase: Int) -> SIMD16<Float> {
        SIMD16(
            first[phase], first[4 + phase], first[8 + phase], first[12 + phase], second[phase], second[4 + phase],
            second[8 + phase], second[12 + phase],
            first[phase + 1], first[5 + phase], first[9 + phase], first[13 + phase], second[phase + 1],
            second[5 + phase], second[9 + phase], second[13 + phase])
    }

    /// Lanes offset..<offset + 8 of first, then those of second.
    @inline(__always)
    static func halves(_ first: SIMD16<Float>, _ second: SIMD16<Float>, _ offset: Int) -> SIMD16<Float> {
        SIMD16(
            first[offset], first[offset + 1], first[offset + 2], first[offset + 3], first[offset + 4],
            first[offset + 5], first[offset + 6], first[offset + 7],
            second[offset], second[offset + 1], second[offset + 2], second[offset + 3], second[offset + 4],
            second[offset + 5], second[offset + 6], second[offset + 7])
    }

    /// The lanes of two vectors with nothing in common (each lane zero in one of them): their bitwise or.
    @inline(__always)
    static func merged(_ first: SIMD16<Float>, _ second: SIMD16<Float>) -> SIMD16<Float> {
        unsafeBitCast(
            unsafeBitCast(first, to: SIMD16<UInt32>.self) | unsafeBitCast(second, to: SIMD16<UInt32>.self),
            to: SIMD16<Float>.self)
    }

    /// Lanes 1...16 of the 32 floats first, second.
    @inline(__always)
    static func shiftedByOne(_ first: SIMD16<Float>, _ second: SIMD16<Float>) -> SIMD16<Float> {
        SIMD16(
            first[1], first[2], first[3], first[4], first[5], first[6], first[7], first[8], first[9], first[10],
            first[11], first[12], first[13], first[14], first[15], second[0])
    }

    /// Floats 16 quarter..<16 quarter + 16 of y0[0], y1[0], y2[0], y3[0], y0[1], ...: four tiles' rows side by side.
    @inline(__always)
    static func interleave(
        _ y0: SIMD16<Float>, _ y1: SIMD16<Float>, _ y2: SIMD16<Float>, _ y3: SIMD16<Float>, _ quarter: Int
    )
        -> SIMD16<Float>
    {
        let lane = 4 * quarter
        return SIMD16(
            y0[lane], y1[lane], y2[lane], y3[lane], y0[lane + 1], y1[lane + 1], y2[lane + 1], y3[lane + 1],
            y0[lane + 2], y1[lane + 2], y2[lane + 2], y3[lane + 2], y0[lane + 3], y1[lane + 3], y2[lane + 3],
            y3[lane + 3])
    }
}

/// A 3x3 conv's filters transformed for `WinogradConvolution`: U = G g G^T per (output, input) pair,
/// each of the alpha^2 positions' outputs x inputs matrix packed as the GEMM's A ([ceil(O/8)][K][8]).
/// Computed in double precision, then rounded once.
public final class WinogradWeights: @unchecked Sendable {
    public let transform: WinogradTransform
    public let outChannels: Int, inChannels: Int
    /// 8-row tiles of outputs.
    var tiles: Int { (outChannels + 7) / 8 }
    public let storage: AlignedBuffer

    /// The floats the transformed weights take: alpha^2 positions of whole 8-row tiles.
    public static func storageCount(outChannels: Int, inChannels: Int, transform: WinogradTransform) -> Int {
        transform.alpha * transform.alpha * ((outChannels + 7) / 8 * 8) * inChannels
    }

    /// Transforms OIHW 3x3 `weights` from where they are (a mapped file's floats are read in place),
    /// into `arena` when it has room.
    public init(
        _ weights: UnsafeBufferPointer<Float>, outChannels: Int, inChannels: Int, transform: WinogradTransform,
        in arena: WeightArena? = nil
    ) {
        precondition(
            weights.count == outChannels * inChannels * 9, "WinogradWeights: \(weights.count) values for a 3x3 conv")
        self.transform = transform
        self.outChannels = outChannels
        self.inChannels = inChannels
        let alpha = transform.alpha
        let tiles = (outChannels + 7) / 8
        // Every float is written below (the outputs past `outChannels` as zero).
        storage = AlignedBuffer(
            uninitializedCount: Self.storageCount(
                outChannels: outChannels, inChannels: inChannels, transform: transform),
            in: arena)
        let packed = storage.pointer
        // One (tile, input) pair at a time, the tile's 8 outputs in the lanes of SIMD8<Double>: the same
        // double-precision operations in the same order as G g G^T computed for each output alone (so the
        // same floats, bit for bit), and each position's 8 floats one store where they belong.
        let matrixG = UnsafeMutablePointer<SIMD8<Double>>.allocate(capacity: alpha * 3)
        defer { matrixG.deallocate() }
        for index in 0..<(alpha * 3) { matrixG[index] = SIMD8(repeating: transform.filterMatrix[index]) }
        // A tile's filters with their outputs innermost, [input][tap][output], zero past the last output:
        // each tap's 8 outputs are then one load.
        let tileFilters = UnsafeMutablePointer<Float>.allocate(capacity: inChannels * 9 * 8)
        defer { tileFilters.deallocate() }
        guard let filters = weights.baseAddress else { return }
        for tile in 0..<tiles {
            let lanes = min(8, outChannels - tile * 8)
            if lanes < 8 { tileFilters.initialize(repeating: 0, count: inChannels * 9 * 8) }
            for lane in 0..<lanes {
                let filter = filters + (tile * 8 + lane) * inChannels * 9
                for index in 0..<(inChannels * 9) { tileFilters[index * 8 + lane] = filter[index] }
            }
            // The lanes past the last output hold +0 (their taps are zero, but G's negative
            // coefficients would make some -0).
            let past = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) .>= SIMD8(repeating: Int32(lanes))
            for input in 0..<inChannels {
                let inputTaps = UnsafeRawPointer(tileFilters + input * 72)
                func tap(_ index: Int) -> SIMD8<Double> {
                    SIMD8<Double>(inputTaps.loadUnaligned(fromByteOffset: index * 32, as: SIMD8<Float>.self))
                }
                let taps = (tap(0), tap(1), tap(2), tap(3), tap(4), tap(5), tap(6), tap(7), tap(8))
                for r in 0..<alpha {
                    let (g0, g1, g2) = (matrixG[r * 3], matrixG[r * 3 + 1], matrixG[r * 3 + 2])
                    let row0 = g0 * taps.0 + g1 * taps.3 + g2 * taps.6
                    let row1 = g0 * taps.1 + g1 * taps.4 + g2 * taps.7
                    let row2 = g0 * taps.2 + g1 * taps.5 + g2 * taps.8
                    for c in 0..<alpha {
                        let transformed = row0 * matrixG[c * 3] + row1 * matrixG[c * 3 + 1] + row2 * matrixG[c * 3 + 2]
                        let at = (((r * alpha + c) * tiles + tile) * inChannels + input) * 8
                        var value = SIMD8<Float>(transformed)
                        if lanes < 8 { value.replace(with: 0, where: past) }
                        UnsafeMutableRawPointer(packed + at).storeBytes(of: value, as: SIMD8<Float>.self)
                    }
                }
            }
        }
    }

}
