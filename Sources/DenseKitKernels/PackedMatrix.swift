/// The A operand of `GEMM`: an M x K row-major matrix repacked in panels of 8 rows,
/// layout [ceil(M/8)][K][8], rows past M zero. Packed once when a model is loaded.
public final class PackedMatrix: @unchecked Sendable {
    public static let panelRows = 8
    public let rows: Int
    public let cols: Int
    public let storage: AlignedBuffer

    /// What the GEMM calls a row of a conv's packed weights. Both orders put the same floats in the same
    /// places: the block of outputs `8p..<8p+8` holds, for each tap `t` and input `i`, those outputs'
    /// weights at `((p * taps + t) * inputs + i) * 8`.
    public enum ConvolutionRows: Sendable {
        /// M = outputs, K = taps x inputs, tap-major (`PhaseConvolution`; a pointwise conv's own matrix).
        case outputs
        /// M = (block of 8 outputs, tap, output within the block), K = inputs (`ShiftedConvolution`).
        case outputTaps
    }

    private init(rows: Int, cols: Int, storage: AlignedBuffer) {
        self.rows = rows
        self.cols = cols
        self.storage = storage
    }

    /// Packs `values`, row-major M x K.
    public convenience init(rows: Int, cols: Int, values: [Float]) {
        precondition(values.count == rows * cols, "PackedMatrix: \(values.count) values for \(rows)x\(cols)")
        let storage = values.withUnsafeBufferPointer {
            Self.pack(convolution: $0, outChannels: rows, inChannels: cols, taps: 1, scales: nil, in: nil)
        }
        self.init(rows: rows, cols: cols, storage: storage)
    }

    /// Packs a conv's OIHW `weights` in one pass from where they are (a mapped file's floats are read in
    /// place), each output channel's weights times `scales[o]` when given (a BatchNorm folded into the
    /// conv: the same float products as `Conv2D.folding`), in `arena` when it has room.
    public convenience init(
        convolution weights: UnsafeBufferPointer<Float>, outChannels: Int, inChannels: Int, kernel: Int,
        scales: UnsafeBufferPointer<Float>? = nil, rows order: ConvolutionRows, in arena: WeightArena? = nil
    ) {
        let taps = kernel * kernel
        precondition(
            weights.count == outChannels * inChannels * taps,
            "PackedMatrix: \(weights.count) values for a \(outChannels)x\(inChannels)x\(kernel)x\(kernel) conv")
        precondition(scales.map { $0.count == outChannels } ?? true, "PackedMatrix: one scale per output channel")
        let storage = Self.pack(
            convolution: weights, outChannels: outChannels, inChannels: inChannels, taps: taps, scales: scales,
            in: arena)
        switch order {
        case .outputs: self.init(rows: outChannels, cols: taps * inChannels, storage: storage)
        case .outputTaps: self.init(rows: (outChannels + 7) / 8 * taps * 8, cols: inChannels, storage: storage)
        }
    }

    /// The floats a conv's packed weights take (either order): whole blocks of 8 outputs.
    public static func storageCount(outChannels: Int, inChannels: Int, kernel: Int) -> Int {
        (outChannels + 7) / 8 * 8 * kernel * kernel * inChannels
    }

    /// Every float of the result is written once, in order (fresh memory is touched once): for each
    /// block of 8 outputs, tap and input, the 8 outputs' weights in one store, zero past the last output.
    private static func pack(
        convolution weights: UnsafeBufferPointer<Float>, outChannels: Int, inChannels: Int, taps: Int,
        scales: UnsafeBufferPointer<Float>?, in arena: WeightArena?
    ) -> AlignedBuffer {
        let blocks = (outChannels + 7) / 8
        let storage = AlignedBuffer(uninitializedCount: blocks * 8 * taps * inChannels, in: arena)
        guard let source = weights.baseAddress else { return storage }
        let perOutput = inChannels * taps
        for block in 0..<blocks {
            let lanes = min(8, outChannels - block * 8)
            var laneScales = SIMD8<Float>(repeating: 0)
            for lane in 0..<lanes { laneScales[lane] = scales?[block * 8 + lane] ?? 1 }
            let first = source + block * 8 * perOutput
            var destination = UnsafeMutableRawPointer(storage.pointer + block * taps * inChannels * 8)
            for tap in 0..<taps {
                for input in 0..<inChannels {
                    let at = first + input * taps + tap
                    var lanesValues = SIMD8<Float>()
                    if lanes == 8 {
                        lanesValues = SIMD8(
                            at[0], at[perOutput], at[2 * perOutput], at[3 * perOutput], at[4 * perOutput],
                            at[5 * perOutput], at[6 * perOutput], at[7 * perOutput])
                    } else {
                        for lane in 0..<lanes { lanesValues[lane] = at[lane * perOutput] }
                    }
                    destination.storeBytes(of: lanesValues * laneScales, as: SIMD8<Float>.self)
                    destination += 32
                }
            }
        }
        return storage
    }

    @inline(__always) func panel(_ index: Int) -> UnsafePointer<Float> {
        UnsafePointer(storage.pointer + index * cols * 8)
    }
}
