/// How the executor stores an h x w feature map: each channel a plane of rows `width` wide (no
/// border columns), the image's h rows after `border` rows and `border` cells of vertical border,
/// and as many after it: (h + 2b) * w + 2b floats.
///
/// With b = the dense layers' padding, a "same" conv (`ShiftedConvolution`) reads its input's image
/// rows as they are and adds each tap's output into the block buffer at the tap's shift; the shifts
/// of all taps stay inside the plane. Border cells hold whatever a GEMM computed there and nothing
/// reads them as image values. With b = 0 this is the plain CHW layout.
public struct PlaneLayout: Sendable {
    public let height: Int, width: Int, border: Int

    public init(height: Int, width: Int, border: Int) {
        self.height = height
        self.width = width
        self.border = border
    }

    public var plane: Int { (height + 2 * border) * width + 2 * border }
    /// Offset of pixel (0, 0) in a plane; the image is `height * width` consecutive floats from here.
    public var interior: Int { border * width + border }
    /// The columns a pointwise GEMM computes from `interior`: the image, rounded up to whole GEMM
    /// panels when the plane has room (the extra columns are border cells).
    public var gemmColumns: Int {
        let pixels = height * width
        let rounded = (pixels + GEMM.nr - 1) / GEMM.nr * GEMM.nr
        return rounded <= plane - interior ? rounded : pixels
    }
    public var strides: Elementwise.Strides { Elementwise.Strides(row: width, plane: plane) }

    /// Packed CHW images (no border).
    var packedStrides: Elementwise.Strides { Elementwise.Strides(row: width, plane: height * width) }

    /// Copies the images of `channels` planes into packed CHW at `dst` (channel `c` to `dst[c - lowerBound]`).
    public func pack(_ source: UnsafePointer<Float>, channels: Range<Int>, into dst: UnsafeMutablePointer<Float>) {
        Elementwise.copy(
            source + channels.lowerBound * plane + interior, from: strides, dst, to: packedStrides,
            channels: channels.count, height: height, width: width)
    }

    /// Copies packed CHW images at `src` into the interiors of `channels` planes.
    public func unpack(_ src: UnsafePointer<Float>, channels: Range<Int>, into target: UnsafeMutablePointer<Float>) {
        Elementwise.copy(
            src, from: packedStrides, target + channels.lowerBound * plane + interior, to: strides,
            channels: channels.count, height: height, width: width)
    }
}
