/// The memory-bound kernels around the GEMMs, SIMD versions (the `Reference` enum has plain ones).
public enum Elementwise {
    /// Distances, in floats, between the rows and between the channel planes of a CHW map.
    public struct Strides: Sendable {
        public var row: Int, plane: Int
        public init(row: Int, plane: Int) {
            self.row = row
            self.plane = plane
        }
    }

    /// Copies `channels` maps of height x width between layouts whose rows and planes are `from` and
    /// `to` apart (dropping a convolution grid's extra columns, adding or removing a map's border).
    public static func copy(
        _ src: UnsafePointer<Float>, from: Strides, _ dst: UnsafeMutablePointer<Float>, to: Strides,
        channels: Int, height: Int, width: Int
    ) {
        for c in 0..<channels {
            for y in 0..<height {
                (dst + c * to.plane + y * to.row).update(from: src + c * from.plane + y * from.row, count: width)
            }
        }
    }

    /// dst[c][i] = max(0, src[c][i] * scale[c] + shift[c]) for CHW planes of `size` values.
    public static func batchNormReLU(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, channels: Int, size: Int,
        scale: UnsafePointer<Float>, shift: UnsafePointer<Float>
    ) {
        for c in 0..<channels {
            let scaleVector = SIMD16<Float>(repeating: scale[c])
            let shiftVector = SIMD16<Float>(repeating: shift[c])
            let ss = scale[c]
            let tt = shift[c]
            let source = UnsafeRawPointer(src + c * size)
            let target = UnsafeMutableRawPointer(dst + c * size)
            var index = 0
            while index + 16 <= size {
                var value = shiftVector.addingProduct(
                    source.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self), scaleVector)
                value = value.replacing(with: 0, where: value .< 0)
                target.storeBytes(of: value, toByteOffset: index * 4, as: SIMD16<Float>.self)
                index += 16
            }
            while index < size {
                let value = src[c * size + index] * ss + tt
                dst[c * size + index] = relu(value)
                index += 1
            }
        }
    }

    /// BN -> ReLU -> average pool 2x2 stride 2 (floor) of CHW planes h x w into h/2 x w/2. Rows and
    /// planes may be farther apart than the image (`Strides`, for maps stored with a zero border).
    public static func batchNormReLUAvgPool2(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, channels: Int,
        height: Int, width: Int, scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
        from: Strides? = nil, to: Strides? = nil
    ) {
        let oh = height / 2
        let ow = width / 2
        let from = from ?? Strides(row: width, plane: height * width)
        let to = to ?? Strides(row: ow, plane: oh * ow)
        for c in 0..<channels {
            let channelScale = scale[c]
            let channelShift = shift[c]
            let plane = src + c * from.plane
            for oy in 0..<oh {
                let out = dst + c * to.plane + oy * to.row
                let r0 = plane + 2 * oy * from.row
                let r1 = r0 + from.row
                var ox = 0
                let sv = SIMD8<Float>(repeating: channelScale)
                let tv = SIMD8<Float>(repeating: channelShift)
                // 8 outputs from two 16-wide loads; the last group overlaps the one before it instead
                // of leaving a scalar tail.
                if ow >= 8 {
                    while ox < ow {
                        let start = min(ox, ow - 8)
                        let upper = UnsafeRawPointer(r0 + 2 * start).loadUnaligned(as: SIMD16<Float>.self)
                        let lower = UnsafeRawPointer(r1 + 2 * start).loadUnaligned(as: SIMD16<Float>.self)
                        var ae = tv.addingProduct(upper.evenHalf, sv)
                        var ao = tv.addingProduct(upper.oddHalf, sv)
                        var be = tv.addingProduct(lower.evenHalf, sv)
                        var bo = tv.addingProduct(lower.oddHalf, sv)
                        ae = ae.replacing(with: 0, where: ae .< 0)
                        ao = ao.replacing(with: 0, where: ao .< 0)
                        be = be.replacing(with: 0, where: be .< 0)
                        bo = bo.replacing(with: 0, where: bo .< 0)
                        let sum = (ae + ao) + (be + bo)
                        UnsafeMutableRawPointer(out + start).storeBytes(of: sum * 0.25, as: SIMD8<Float>.self)
                        ox = start + 8
                    }
                }
                while ox < ow {
                    let v0 = relu(r0[2 * ox] * channelScale + channelShift)
                    let v1 = relu(r0[2 * ox + 1] * channelScale + channelShift)
                    let v2 = relu(r1[2 * ox] * channelScale + channelShift)
                    let v3 = relu(r1[2 * ox + 1] * channelScale + channelShift)
                    out[ox] = ((v0 + v1) + (v2 + v3)) * 0.25
                    ox += 1
                }
            }
        }
    }

    /// BN -> ReLU -> global average (or, with `max`, maximum) pool of CHW planes into one value per
    /// channel. (ReLU's outputs are >= 0, so 0 starts the maximum, and the ReLU before it is implied.)
    public static func batchNormReLUGlobalPool(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, channels: Int, size: Int,
        scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, max isMax: Bool = false
    ) {
        for c in 0..<channels {
            let scaleVector = SIMD16<Float>(repeating: scale[c])
            let shiftVector = SIMD16<Float>(repeating: shift[c])
            let source = UnsafeRawPointer(src + c * size)
            var acc = SIMD16<Float>()
            var index = 0
            while index + 16 <= size {
                let value = shiftVector.addingProduct(
                    source.loadUnaligned(fromByteOffset: index * 4, as: SIMD16<Float>.self), scaleVector)
                acc =
                    isMax
                    ? maximum(acc, value) : acc + value.replacing(with: 0, where: value .< 0)
                index += 16
            }
            var total = isMax ? (acc.indices.contains { acc[$0].isNaN } ? .nan : acc.max()) : acc.sum()
            while index < size {
                let value = relu(src[c * size + index] * scale[c] + shift[c])
                total = isMax ? maximum(total, value) : total + value
                index += 1
            }
            dst[c] = isMax ? total : total / Float(size)
        }
    }

    /// Max pooling of CHW planes (padding never wins: it is -infinity), one output row at a time: the
    /// maximum down the window's input rows into a row padded with -infinity, then across each
    /// window of that row, 8 (stride 2) or 16 (stride 1) outputs at a time. Input rows are `rowStride`
    /// floats apart (planes `height * rowStride`), so a wide convolution grid can be read in place;
    /// output rows and planes are `to` apart (default: packed). `outputRows` limits the work to those
    /// rows of the output (the input rows their windows read must be ready).
    public static func maxPool(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, channels: Int, height: Int, width: Int,
        rowStride: Int? = nil, kernel: Int, stride: Int, padTop: Int, padLeft: Int,
        outHeight: Int, outWidth: Int, to: Strides? = nil, outputRows: Range<Int>? = nil
    ) {
        let ld = rowStride ?? width
        let to = to ?? Strides(row: outWidth, plane: outHeight * outWidth)
        let outRows = outputRows ?? 0..<outHeight
        guard !outRows.isEmpty, outWidth > 0 else { return }
        // Column position of the input is column padLeft + position of `column`; everything else stays -infinity,
        // including the slack that the last 16-wide loads of the widest windows reach.
        let columns = max(padLeft + width, (outWidth - 1) * stride + kernel) + 16
        let column = UnsafeMutablePointer<Float>.allocate(capacity: columns)
        defer { column.deallocate() }
        column.initialize(repeating: -.infinity, count: columns)
        let inner = column + padLeft
        for c in 0..<channels {
            let plane = src + c * height * ld
            for oy in outRows {
                let y0 = max(0, oy * stride - padTop)
                let y1 = min(height, oy * stride - padTop + kernel)
                let out = dst + c * to.plane + oy * to.row
                guard y0 < y1 else {
                    out.update(repeating: -.infinity, count: outWidth)
                    continue
                }
                inner.update(from: plane + y0 * ld, count: width)
                for y in (y0 + 1)..<y1 {
                    let row = plane + y * ld
                    var position = 0
                    while position + 16 <= width {
                        var running = UnsafeRawPointer(inner + position).loadUnaligned(as: SIMD16<Float>.self)
                        let incoming = UnsafeRawPointer(row + position).loadUnaligned(as: SIMD16<Float>.self)
                        running = maximum(running, incoming)
                        UnsafeMutableRawPointer(inner + position).storeBytes(of: running, as: SIMD16<Float>.self)
                        position += 16
                    }
                    while position < width {
                        inner[position] = maximum(inner[position], row[position])
                        position += 1
                    }
                }
                // Output ox is the maximum of column[ox * stride ..< ox * stride + kernel].
                let lanes = stride == 2 ? 8 : stride == 1 ? 16 : 0
                var ox = 0
                while lanes > 0 && ox < outWidth {
                    // The last group overlaps the one before it when outWidth is not a multiple of lanes.
                    let start = min(ox, max(0, outWidth - lanes))
                    guard start + lanes <= outWidth else { break }
                    let base = UnsafeRawPointer(column + start * stride)
                    if stride == 2 {
                        var largest = base.loadUnaligned(as: SIMD16<Float>.self).evenHalf
                        for j in 1..<kernel {
                            let candidate = base.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self).evenHalf
                            largest = maximum(largest, candidate)
                        }
                        UnsafeMutableRawPointer(out + start).storeBytes(of: largest, as: SIMD8<Float>.self)
                    } else {
                        var largest = base.loadUnaligned(as: SIMD16<Float>.self)
                        for j in 1..<kernel {
                            let candidate = base.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self)
                            largest = maximum(largest, candidate)
                        }
                        UnsafeMutableRawPointer(out + start).storeBytes(of: largest, as: SIMD16<Float>.self)
                    }
                    ox = start + lanes
                }
                while ox < outWidth {
                    var largest = -Float.infinity
                    for j in 0..<kernel { largest = maximum(largest, column[ox * stride + j]) }
                    out[ox] = largest
                    ox += 1
                }
            }
        }
    }
}

extension Elementwise {
    /// output = matrix x vector + bias, the matrix (out, in) row-major: one SIMD dot product per output.
    public static func matVec(
        _ matrix: UnsafePointer<Float>, _ vector: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
        rows: Int, cols: Int, into output: UnsafeMutablePointer<Float>
    ) {
        for o in 0..<rows {
            let row = UnsafeRawPointer(matrix + o * cols)
            let input = UnsafeRawPointer(vector)
            var acc = SIMD16<Float>()
            var column = 0
            while column + 16 <= cols {
                acc = acc.addingProduct(
                    row.loadUnaligned(fromByteOffset: column * 4, as: SIMD16<Float>.self),
                    input.loadUnaligned(fromByteOffset: column * 4, as: SIMD16<Float>.self))
                column += 16
            }
            var sum = acc.sum()
            while column < cols {
                sum += matrix[o * cols + column] * vector[column]
                column += 1
            }
            output[o] = sum + (bias?[o] ?? 0)
        }
    }
}

/// ReLU as torch computes it: a NaN stays NaN (`max(0, x)` would drop it and make a broken model's
/// output look finite). The vector paths' `replacing(with: 0, where: v .< 0)` does the same.
@inline(__always) package func relu(_ value: Float) -> Float { value < 0 ? 0 : value }

/// The larger of two values, NaN if either is (torch's max pooling).
@inline(__always) package func maximum(_ first: Float, _ second: Float) -> Float {
    first.isNaN || second > first ? second : first
}

/// Lane by lane, the larger of two vectors' values, NaN where either is (`maximum` for vectors).
@inline(__always) package func maximum<Vector: SIMD>(_ first: Vector, _ second: Vector) -> Vector
where Vector.Scalar == Float {
    first.replacing(with: second, where: (second .> first) .| (second .!= second))
}
