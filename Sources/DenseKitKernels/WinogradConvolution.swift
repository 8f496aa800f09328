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
/// one vector, whose GEMMs are 8 x 16 register tiles). Each image row is staged from the tiles' first column
/// and split into m phases (column x to phase x mod m) with SIMD shuffles, so the transforms' vectors
/// read consecutive floats. Exact in real arithmetic; in float32 the transforms' coefficients (up to
/// 8 and 1/24) add rounding error.
public enum WinogradConvolution {
    /// Tiles per panel: the GEMM's register tile width, two vectors.
    static let panelTiles = GEMM.nr

    /// Tiles of one tile row in a vector: lanes `entry`..<`entry + count`, whose staged input starts
    /// at entry `entry` and takes `reach` entries. Each tile reads its own entry and the next (its
    /// input columns m and m + 1), so a vector holding several rows leaves one lane between them
    /// (`reach` = count + 1), unless those columns of a row's last tile are past the image
    /// (`reach` = count): the tile then reads the next row's first entry instead, whose column 0 is
    /// padding (zero, as column m should be) and whose column 1 reaches only the tile's last output
    /// column (input column m + 1 appears only in B^T's last row, and M's last column only in A^T's),
    /// which is past the image and not written.
    struct Piece {
        let tileRow: Int, firstTile: Int, count: Int, entry: Int, reach: Int
    }

    /// One vector's tiles, and the 16-entry chunks its staged rows take (2 when a piece reads entry 16).
    /// A view into `VectorLayout.pieces`: the panels' loops touch no reference-counted storage.
    struct Lanes {
        let pieces: UnsafeBufferPointer<Piece>
        var chunks: Int { pieces.contains { $0.entry + $0.reach > 16 } ? 2 : 1 }
    }

    /// The vectors of a map with `tileRows` x `tileColumns` tiles: every vector's pieces, one after
    /// another, and each vector's range of them. Panels are vectors 2p and 2p + 1.
    struct VectorLayout {
        var pieces: [Piece] = [], vectors: [Range<Int>] = []

        /// Whether rows of `tileColumns` tiles of `m` columns share a vector with no lane between them:
        /// the entry after a row's last tile starts at column tileColumns * m - 1, past a `width`-wide image.
        static func packsRowsTight(tileColumns: Int, m: Int, width: Int) -> Bool {
            tileColumns < 16 && tileColumns * m - 1 >= width
        }

        init(tileRows: Int, tileColumns: Int, tight: Bool = false) {
            func add(_ vector: [Piece]) {
                vectors.append(pieces.count..<pieces.count + vector.count)
                pieces += vector
            }
            if tileColumns < 16 {
                let reach = tight ? tileColumns : tileColumns + 1, perVector = 16 / reach
                for first in stride(from: 0, to: tileRows, by: perVector) {
                    add((first..<min(tileRows, first + perVector)).map {
                        // A vector's last row stages its next entry too (zero) unless it ends the
                        // vector: no row follows it to take that place.
                        let entry = ($0 - first) * reach, last = $0 + 1 == min(tileRows, first + perVector)
                        return Piece(tileRow: $0, firstTile: 0, count: tileColumns, entry: entry,
                                     reach: last && entry + tileColumns < 16 ? tileColumns + 1 : reach)
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
    }

    /// Floats of one channel's staged input rows for one vector: alpha rows of two 16-entry chunks of m columns.
    static func lineFloats(m: Int) -> Int { (m + 2) * 2 * 16 * m }

    /// Floats from one position's matrix in V (one panel row per input channel) to the next's, and in
    /// M (one per output, in 8-row tiles): 16 more than the matrix, or consecutive positions would be a
    /// multiple of 4 KB apart and a tile's alpha^2 stores or loads would all fall in one L1 set.
    static func transformedStride(inChannels: Int) -> Int { inChannels * panelTiles + 16 }
    static func productStride(outputTiles: Int) -> Int { outputTiles * 8 * panelTiles + 16 }

    /// One thread's buffers for the panels it does.
    public final class Scratch {
        let transformed: AlignedBuffer, products: AlignedBuffer
        let line: AlignedBuffer, staging: AlignedBuffer, vertical: AlignedBuffer, tile: AlignedBuffer

        /// Room for a layer of at most `inChannels` inputs and `outChannels` outputs, with `transform` or a smaller one.
        public init(_ transform: WinogradTransform, inChannels: Int, outChannels: Int) {
            let (a, m) = (transform.alpha, transform.m), positions = a * a
            transformed = AlignedBuffer(count: positions * transformedStride(inChannels: inChannels))
            products = AlignedBuffer(count: positions * productStride(outputTiles: (outChannels + 7) / 8))
            line = AlignedBuffer(count: 4 * lineFloats(m: m))
            staging = AlignedBuffer(count: a * m * 32)
            // Per row of the vertical transform, m phases and 2 of them shifted by one entry.
            vertical = AlignedBuffer(count: a * (m + 2) * 16)
            // The output transform's vectors (alpha x m, then m x m), a row of output tiles, and the
            // edge tile the GEMM's tile needs.
            tile = AlignedBuffer(count: (a * m + m * m) * 16 + 16 * m + 8 * GEMM.nr)
        }

        /// The buffers' memory, for the panels' loops.
        struct Pointers {
            let transformed: UnsafeMutablePointer<Float>, products: UnsafeMutablePointer<Float>
            let line: UnsafeMutablePointer<Float>, staging: UnsafeMutablePointer<Float>
            let vertical: UnsafeMutablePointer<Float>, tile: UnsafeMutablePointer<Float>

            /// These working buffers with `other`'s V and M: for threads sharing one panel.
            func sharing(_ other: Pointers) -> Pointers {
                Pointers(transformed: other.transformed, products: other.products, line: line, staging: staging, vertical: vertical, tile: tile)
            }
        }

        var pointers: Pointers {
            Pointers(transformed: transformed.pointer, products: products.pointer, line: line.pointer,
                     staging: staging.pointer, vertical: vertical.pointer, tile: tile.pointer)
        }
    }

    /// Convolves `weights.inChannels` input images (channel c's h x w image from `input + c * inputStride`,
    /// rows `width` apart) into `weights.outChannels` output images (from `output + o * outputStride`),
    /// overwriting them: bias (or zero) plus the convolution. Outside the images nothing is read or
    /// written. `scratch` holds one `Scratch` per thread (at least `threads`), each sized for this layer.
    public static func run(_ weights: WinogradWeights, _ input: UnsafePointer<Float>, inputStride: Int, height: Int, width: Int,
                           into output: UnsafeMutablePointer<Float>, outputStride: Int, bias: UnsafePointer<Float>?,
                           scratch: [Scratch], threads: Int) {
        let m = weights.transform.m, tileColumns = (width + m - 1) / m
        let layout = VectorLayout(tileRows: (height + m - 1) / m, tileColumns: tileColumns,
                                  tight: VectorLayout.packsRowsTight(tileColumns: tileColumns, m: m, width: width))
        let parts = min(threads, scratch.count, WorkerPool.maxParts)
        let layer = Layer(weights: weights, input: input, inputStride: inputStride, height: height, width: width,
                          output: output, outputStride: outputStride, bias: bias)
        let buffers = scratch.prefix(parts).map(\.pointers)
        defer { withExtendedLifetime((weights, scratch)) {} }   // the layer and buffers hold their memory
        layout.pieces.withUnsafeBufferPointer { pieces in
            let lanes = layout.vectors.map { Lanes(pieces: UnsafeBufferPointer(rebasing: pieces[$0])) }
            lanes.withUnsafeBufferPointer { lanes in
                func vectors(_ p: Int) -> UnsafeBufferPointer<Lanes> { UnsafeBufferPointer(rebasing: lanes[2 * p..<min(lanes.count, 2 * p + 2)]) }
                let pool = WorkerPool.shared(threads: threads), whole = layout.panelCount / parts * parts
                if whole > 0 {
                    pool.run(parts: parts) { part in
                        for p in stride(from: part, to: whole, by: parts) { layer.panel(vectors(p), buffers[part]) }
                    }
                }
                // The panels left over (fewer than the threads: on 2 threads, the 7th of a 56 px map's 7,
                // or a 14 px map's only one) are each done by all threads, step by step, into the first
                // thread's V and M.
                guard whole < layout.panelCount else { return }
                let shared = buffers.map { $0.sharing(buffers[0]) }, positions = layer.alpha * layer.alpha
                func share(_ part: Int, _ count: Int) -> Range<Int> { (part * count / parts)..<((part + 1) * count / parts) }
                for p in whole..<layout.panelCount {
                    let v = vectors(p)
                    pool.run(parts: parts) { layer.transformInputs(v, channels: share($0, layer.inChannels), shared[$0]) }
                    pool.run(parts: parts) { layer.multiply(positions: share($0, positions), columns: 16 * v.count, shared[$0]) }
                    pool.run(parts: parts) { layer.transformOutputs(v, outputs: share($0, layer.outChannels), shared[$0]) }
                }
            }
        }
    }

    /// One layer's operands, and the three steps on one panel. Only numbers and pointers: nothing in
    /// a panel retains or releases (`run` keeps the filters and the scratch buffers alive).
    struct Layer {
        let m: Int, alpha: Int, inChannels: Int, outChannels: Int, tiles: Int
        /// `transformedStride` and `productStride` for this layer.
        let vStride: Int, mStride: Int
        let filters: UnsafePointer<Float>
        let input: UnsafePointer<Float>, inputStride: Int, height: Int, width: Int
        let output: UnsafeMutablePointer<Float>, outputStride: Int
        let bias: UnsafePointer<Float>?

        init(weights: WinogradWeights, input: UnsafePointer<Float>, inputStride: Int, height: Int, width: Int,
             output: UnsafeMutablePointer<Float>, outputStride: Int, bias: UnsafePointer<Float>?) {
            (m, alpha) = (weights.transform.m, weights.transform.alpha)
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
        func panel(_ vectors: UnsafeBufferPointer<Lanes>, _ s: Scratch.Pointers) {
            transformInputs(vectors, channels: 0..<inChannels, s)
            multiply(positions: 0..<alpha * alpha, columns: 16 * vectors.count, s)
            transformOutputs(vectors, outputs: 0..<outChannels, s)
        }

        /// Step 1 for input channels `channels`: their rows of every position's matrix in V.
        func transformInputs(_ vectors: UnsafeBufferPointer<Lanes>, channels: Range<Int>, _ s: Scratch.Pointers) {
            let lineFloats = WinogradConvolution.lineFloats(m: m)
            // Channel c's rows are staged one channel ahead of their transform, in two alternating
            // buffers: the transform's vector loads then read stores long retired (a load right after
            // the narrower stores of a copy waits for them: measured, a fifth of the panel's time).
            func line(_ c: Int, _ v: Int) -> UnsafeMutablePointer<Float> { s.line + ((c & 1) * 2 + v) * lineFloats }
            for c in channels.lowerBound...channels.upperBound {
                if c < channels.upperBound {
                    for (v, lanes) in vectors.enumerated() { stageInput(c, lanes, into: line(c, v)) }
                }
                if c > channels.lowerBound {
                    for (v, lanes) in vectors.enumerated() { transformInput(c - 1, lanes, slot: v * 16, from: line(c - 1, v), s) }
                }
            }
        }

        /// Step 2 for `positions`: M[position] = U[position] V[position], 8 x 32 register tiles over
        /// K = all input channels, or 8 x 16 for a panel of one vector (`columns` 16: V's other 16
        /// columns hold whatever they held, and M's columns there are neither computed nor read).
        func multiply(positions: Range<Int>, columns: Int, _ s: Scratch.Pointers) {
            let (k, v, mp) = (inChannels, s.transformed, s.products)
            let edge = s.tile + (alpha * m + m * m) * 16 + 16 * m
            for position in positions {
                let b = UnsafeRawPointer(v + position * vStride)
                for tile in 0..<tiles {
                    let c = mp + position * mStride + tile * 8 * panelTiles
                    if columns == 16 {
                        GEMM.halfTile(k, filterPanel(position, tile), b, panelTiles * 4, c, panelTiles, true, true, nil, false,
                                      rows: 8, cols: 16, skip: nil, edge: edge)
                    } else {
                        GEMM.tile(k, filterPanel(position, tile), b, panelTiles * 4, c, panelTiles, true, true, nil, false,
                                  rows: 8, cols: panelTiles, skip: nil, edge: edge)
                    }
                }
            }
        }

        /// Step 3 for `outputs`: their tiles from M into the output images.
        func transformOutputs(_ vectors: UnsafeBufferPointer<Lanes>, outputs: Range<Int>, _ s: Scratch.Pointers) {
            for o in outputs {
                for (v, lanes) in vectors.enumerated() { transformOutput(o, lanes, slot: v * 16, s) }
            }
        }

        /// Stages input channel `c`'s alpha rows for the tiles in `lanes`: row r from each piece's first
        /// column at `line + r * 32 m + entry * m` (zero outside the image).
        @inline(__always)
        func stageInput(_ c: Int, _ lanes: Lanes, into line: UnsafeMutablePointer<Float>) {
            let plane = input + c * inputStride
            for r in 0..<alpha {
                for piece in lanes.pieces {
                    let y = piece.tileRow * m - 1 + r, x0 = piece.firstTile * m - 1
                    let dst = line + r * 32 * m + piece.entry * m, n = min(piece.reach * m, 2 * 16 * m - piece.entry * m)
                    guard y >= 0 && y < height else {
                        dst.update(repeating: 0, count: n)
                        continue
                    }
                    let from = max(0, -x0), to = min(n, width - x0)
                    if from > 0 { dst.update(repeating: 0, count: from) }
                    if to > from { (dst + from).update(from: plane + y * width + x0 + from, count: to - from) }
                    if to < n { (dst + max(to, from)).update(repeating: 0, count: n - max(to, from)) }
                }
            }
        }

        /// B^T d B for input channel `c`'s tiles in `lanes`, staged at `lines` (`stageInput`), into
        /// columns `slot`..<`slot + 16` of every position's row c of V.
        @inline(__always)
        func transformInput(_ c: Int, _ lanes: Lanes, slot: Int, from lines: UnsafeMutablePointer<Float>, _ s: Scratch.Pointers) {
            let a = alpha
            let chunks = lanes.chunks
            let stage = s.staging
            // Each row split into phases: stage[r][phase][entry] = column entry * m + phase.
            for r in 0..<a {
                let line = lines + r * 32 * m
                let raw = UnsafeRawPointer(line), phases = UnsafeMutableRawPointer(stage + r * m * 32)
                for chunk in 0..<chunks {
                    let at = chunk * 16 * m * 4
                    let (v0, v1, v2, v3) = (raw.load(fromByteOffset: at, as: SIMD16<Float>.self), raw.load(fromByteOffset: at + 64, as: SIMD16<Float>.self),
                                            raw.load(fromByteOffset: at + 128, as: SIMD16<Float>.self), raw.load(fromByteOffset: at + 192, as: SIMD16<Float>.self))
                    phases.storeBytes(of: everyFourth(v0, v1, v2, v3, 0), toByteOffset: chunk * 64, as: SIMD16<Float>.self)
                    phases.storeBytes(of: everyFourth(v0, v1, v2, v3, 1), toByteOffset: 128 + chunk * 64, as: SIMD16<Float>.self)
                    phases.storeBytes(of: everyFourth(v0, v1, v2, v3, 2), toByteOffset: 256 + chunk * 64, as: SIMD16<Float>.self)
                    phases.storeBytes(of: everyFourth(v0, v1, v2, v3, 3), toByteOffset: 384 + chunk * 64, as: SIMD16<Float>.self)
                }
            }
            // Down the columns: T[kr][phase] = sum_r B^T[kr][r] stage[r][phase], as vector slot `phase`
            // of row kr; phases 0 and 1 also shifted by one entry (tile t's columns m and m + 1 are
            // entry t + 1's), as slots m and m + 1, by a shuffle in registers: every slot is written and
            // read whole, so each load takes its value straight from the store before it.
            let stageRaw = UnsafeRawPointer(stage), vertical = UnsafeMutableRawPointer(s.vertical)
            let rowBytes = (m + 2) * 64
            for p in 0..<m {
                let src = stageRaw + p * 128
                inputTransform({ src.load(fromByteOffset: $0 * m * 128, as: SIMD16<Float>.self) },
                               { vertical.storeBytes(of: $1, toByteOffset: $0 * rowBytes + p * 64, as: SIMD16<Float>.self) })
                guard p < 2 else { continue }
                let next = { (kr: Int) in vertical.load(fromByteOffset: kr * rowBytes + p * 64, as: SIMD16<Float>.self) }
                let shifted = { (kr: Int, following: SIMD16<Float>) in
                    vertical.storeBytes(of: shiftedByOne(next(kr), following), toByteOffset: kr * rowBytes + (m + p) * 64, as: SIMD16<Float>.self)
                }
                if chunks == 2 {
                    inputTransform({ src.load(fromByteOffset: 64 + $0 * m * 128, as: SIMD16<Float>.self) }, shifted)
                } else {
                    for kr in 0..<a { shifted(kr, SIMD16()) }
                }
            }
            // Along the rows: V[kr][kc] = sum_q T[kr][column q] B[q][kc]; tile t's column q is slot q.
            let v = UnsafeMutableRawPointer(s.transformed + c * panelTiles + slot)
            for kr in 0..<a {
                let row = UnsafeRawPointer(vertical + kr * rowBytes)
                inputTransform({ row.load(fromByteOffset: $0 * 64, as: SIMD16<Float>.self) },
                               { v.storeBytes(of: $1, toByteOffset: (kr * a + $0) * vStride * 4, as: SIMD16<Float>.self) })
            }
        }

        /// A^T M A plus the bias for output `o`'s tiles in `lanes` (columns `slot`... of M), written into its image.
        @inline(__always)
        func transformOutput(_ o: Int, _ lanes: Lanes, slot: Int, _ s: Scratch.Pointers) {
            let a = alpha
            let ld = mStride * 4
            let base = UnsafeRawPointer(s.products + o * panelTiles + slot)
            let half = UnsafeMutableRawPointer(s.tile)           // alpha x m vectors: M A
            let result = half + a * m * 64                                 // m x m vectors: A^T M A
            let row = (result + m * m * 64).assumingMemoryBound(to: Float.self)
            let b = SIMD16<Float>(repeating: bias?[o] ?? 0)
            for kr in 0..<a {
                outputTransform({ base.load(fromByteOffset: (kr * a + $0) * ld, as: SIMD16<Float>.self) },
                                { half.storeBytes(of: $1, toByteOffset: (kr * m + $0) * 64, as: SIMD16<Float>.self) })
            }
            for j in 0..<m {
                outputTransform({ half.load(fromByteOffset: ($0 * m + j) * 64, as: SIMD16<Float>.self) },
                                { result.storeBytes(of: $1 + b, toByteOffset: ($0 * m + j) * 64, as: SIMD16<Float>.self) })
            }
            // Output row r of every tile: lane t's m values to floats t * m..., then each piece's part to its image row.
            let plane = output + o * outputStride
            for r in 0..<m {
                let y = UnsafeRawPointer(result + r * m * 64), out = UnsafeMutableRawPointer(row)
                let (y0, y1, y2, y3) = (y.load(as: SIMD16<Float>.self), y.load(fromByteOffset: 64, as: SIMD16<Float>.self),
                                        y.load(fromByteOffset: 128, as: SIMD16<Float>.self), y.load(fromByteOffset: 192, as: SIMD16<Float>.self))
                out.storeBytes(of: interleave(y0, y1, y2, y3, 0), as: SIMD16<Float>.self)
                out.storeBytes(of: interleave(y0, y1, y2, y3, 1), toByteOffset: 64, as: SIMD16<Float>.self)
                out.storeBytes(of: interleave(y0, y1, y2, y3, 2), toByteOffset: 128, as: SIMD16<Float>.self)
                out.storeBytes(of: interleave(y0, y1, y2, y3, 3), toByteOffset: 192, as: SIMD16<Float>.self)
                for piece in lanes.pieces {
                    let iy = piece.tileRow * m + r, x0 = piece.firstTile * m
                    guard iy < height else { continue }
                    (plane + iy * width + x0).update(from: row + piece.entry * m, count: min(piece.count * m, width - x0))
                }
            }
        }
    }

    // MARK: the 1-D transforms, unrolled (the matrices are `WinogradTransform`'s)

    /// B^T d for d = d(0)..<d(alpha), out(i, (B^T d)[i]).
    @inline(__always)
    static func inputTransform(_ d: (Int) -> SIMD16<Float>, _ out: (Int, SIMD16<Float>) -> Void) {
        // B^T rows: [4 0 -5 0 1 0] [0 -4 -4 1 1 0] [0 4 -4 -1 1 0] [0 -2 -1 2 1 0] [0 2 -1 -2 1 0] [0 4 0 -5 0 1]
        let (d0, d1, d2, d3, d4, d5) = (d(0), d(1), d(2), d(3), d(4), d(5))
        let a = d4 - 4 * d2, b = d3 - 4 * d1, c = d4 - d2, e = 2 * (d3 - d1)
        out(0, 4 * d0 - 5 * d2 + d4)
        out(1, a + b)
        out(2, a - b)
        out(3, c + e)
        out(4, c - e)
        out(5, 4 * d1 - 5 * d3 + d5)
    }

    /// A^T x for x = x(0)..<x(alpha), out(i, (A^T x)[i]).
    @inline(__always)
    static func outputTransform(_ x: (Int) -> SIMD16<Float>, _ out: (Int, SIMD16<Float>) -> Void) {
        // A^T rows: [1 1 1 1 1 0] [0 1 -1 2 -2 0] [0 1 1 4 4 0] [0 1 -1 8 -8 1]
        let (x0, x1, x2, x3, x4, x5) = (x(0), x(1), x(2), x(3), x(4), x(5))
        let a = x1 + x2, b = x1 - x2, c = x3 + x4, d = x3 - x4
        out(0, x0 + a + c)
        out(1, b + 2 * d)
        out(2, a + 4 * c)
        out(3, b + 8 * d + x5)
    }

    // MARK: shuffles (constant lanes: each compiles to a few permutes)

    /// Lanes p, p + 4, p + 8, ... of the 64 floats a, b, c, d.
    @inline(__always)
    static func everyFourth(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>, _ d: SIMD16<Float>, _ p: Int) -> SIMD16<Float> {
        SIMD16(a[p], a[4 + p], a[8 + p], a[12 + p], b[p], b[4 + p], b[8 + p], b[12 + p],
               c[p], c[4 + p], c[8 + p], c[12 + p], d[p], d[4 + p], d[8 + p], d[12 + p])
    }

    /// Lanes 1...16 of the 32 floats a, b.
    @inline(__always)
    static func shiftedByOne(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
        SIMD16(a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], b[0])
    }

    /// Floats 16q..<16q + 16 of y0[0], y1[0], y2[0], y3[0], y0[1], ...: four tiles' rows side by side.
    @inline(__always)
    static func interleave(_ y0: SIMD16<Float>, _ y1: SIMD16<Float>, _ y2: SIMD16<Float>, _ y3: SIMD16<Float>, _ q: Int) -> SIMD16<Float> {
        let t = 4 * q
        return SIMD16(y0[t], y1[t], y2[t], y3[t], y0[t + 1], y1[t + 1], y2[t + 1], y3[t + 1],
                      y0[t + 2], y1[t + 2], y2[t + 2], y3[t + 2], y0[t + 3], y1[t + 3], y2[t + 3], y3[t + 3])
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

    /// Floats of the transformed filters of a conv.
    public static func storageCount(outChannels: Int, inChannels: Int, transform: WinogradTransform) -> Int {
        transform.alpha * transform.alpha * ((outChannels + 7) / 8 * 8) * inChannels
    }

    /// Filters already transformed (`storageCount` floats, as `storage` of another one).
    public init(transform: WinogradTransform, outChannels: Int, inChannels: Int, storage: AlignedBuffer) {
        precondition(storage.count == Self.storageCount(outChannels: outChannels, inChannels: inChannels, transform: transform))
        self.transform = transform
        self.outChannels = outChannels
        self.inChannels = inChannels
        self.storage = storage
    }

    public init(_ oihw: [Float], outChannels: Int, inChannels: Int, transform: WinogradTransform) {
        precondition(oihw.count == outChannels * inChannels * 9, "WinogradWeights: \(oihw.count) values for a 3x3 conv")
        self.transform = transform
        self.outChannels = outChannels
        self.inChannels = inChannels
        let positions = transform.alpha * transform.alpha, tiles = (outChannels + 7) / 8
        storage = AlignedBuffer(count: positions * tiles * inChannels * 8)
        let p = storage.pointer
        let u = UnsafeMutablePointer<Double>.allocate(capacity: positions + 3 * transform.alpha)
        defer { u.deallocate() }
        oihw.withUnsafeBufferPointer { w in
            for o in 0..<outChannels {
                for i in 0..<inChannels {
                    transform.filter(w.baseAddress! + (o * inChannels + i) * 9, into: u, scratch: u + positions)
                    for position in 0..<positions {
                        p[((position * tiles + o / 8) * inChannels + i) * 8 + o % 8] = Float(u[position])
                    }
                }
            }
        }
    }
}
