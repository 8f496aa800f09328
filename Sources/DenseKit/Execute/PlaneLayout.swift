import DenseKitKernels

/// How the executor stores an h x w feature map: each channel a plane of (h + 2b) x (w + 2b) floats,
/// the image in the middle and a border b wide around it.
///
/// With b = the dense layers' padding, a 3x3 conv reads its input's planes directly as its padded
/// input (`ShiftedConvolution`, which reads border cells as zero), and writes its output straight into
/// the block buffer: no padded copy, no compaction. Border cells hold whatever a GEMM computed there,
/// and nothing reads them as image values. With b = 0 this is the plain CHW layout.
struct PlaneLayout {
    let height: Int, width: Int, border: Int

    var rowStride: Int { width + 2 * border }
    var plane: Int { (height + 2 * border) * rowStride }
    /// Offset of pixel (0, 0) in a plane.
    var interior: Int { border * rowStride + border }
    /// The image's rows at full width (border columns included): the columns of a pointwise GEMM.
    var rowsStart: Int { border * rowStride }
    var rowsCount: Int { height * rowStride }
    /// The columns a pointwise GEMM computes from `rowsStart`: the image's rows, rounded up to whole
    /// GEMM panels as far as the bottom border has room (the extra columns are border cells).
    var gemmColumns: Int {
        min(plane - rowsStart, (rowsCount + GEMM.panelWidth - 1) / GEMM.panelWidth * GEMM.panelWidth)
    }
    var strides: Elementwise.Strides { Elementwise.Strides(row: rowStride, plane: plane) }

    /// Packed CHW images (no border).
    var packedStrides: Elementwise.Strides { Elementwise.Strides(row: width, plane: height * width) }

    /// Copies the images of `channels` planes into packed CHW at `dst` (channel `c` to `dst[c - lowerBound]`).
    func pack(_ p: UnsafePointer<Float>, channels: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        Elementwise.copy(p + channels.lowerBound * plane + interior, from: strides, dst, to: packedStrides,
                         channels: channels.count, height: height, width: width)
    }

    /// Copies packed CHW images at `src` into the interiors of `channels` planes.
    func unpack(_ src: UnsafePointer<Float>, channels: Range<Int>, into p: UnsafeMutablePointer<Float>) {
        Elementwise.copy(src, from: packedStrides, p + channels.lowerBound * plane + interior, to: strides,
                         channels: channels.count, height: height, width: width)
    }
}
