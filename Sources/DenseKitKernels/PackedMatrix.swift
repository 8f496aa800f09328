/// The A operand of `GEMM`: an M x K row-major matrix repacked in panels of 8 rows,
/// layout [ceil(M/8)][K][8], rows past M zero. Packed once when a model is loaded.
public final class PackedMatrix: @unchecked Sendable {
    public static let panelRows = 8
    public let rows: Int
    public let cols: Int
    public let storage: AlignedBuffer

    /// Packs `values`, row-major M x K (an OIHW conv weight is exactly this with K = I*H*W).
    public init(rows: Int, cols: Int, values: [Float]) {
        precondition(values.count == rows * cols, "PackedMatrix: \(values.count) values for \(rows)x\(cols)")
        self.rows = rows
        self.cols = cols
        let panels = (rows + 7) / 8
        // Only a last panel of fewer than 8 rows has floats no row writes (zero).
        storage =
            rows % 8 == 0
            ? AlignedBuffer(uninitializedCount: panels * cols * 8) : AlignedBuffer(count: panels * cols * 8)
        let base = storage.pointer
        for r in 0..<rows {
            let dst = base + (r / 8) * cols * 8 + r % 8
            for k in 0..<cols { dst[k * 8] = values[r * cols + k] }
        }
    }

    @inline(__always) func panel(_ index: Int) -> UnsafePointer<Float> {
        UnsafePointer(storage.pointer + index * cols * 8)
    }
}
