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
    public static func copy(_ src: UnsafePointer<Float>, from: Strides, _ dst: UnsafeMutablePointer<Float>, to: Strides,
                            channels: Int, height: Int, width: Int) {
        for c in 0..<channels {
            for y in 0..<height {
                (dst + c * to.plane + y * to.row).update(from: src + c * from.plane + y * from.row, count: width)
            }
        }
    }

    /// dst[c][i] = max(0, src[c][i] * scale[c] + shift[c]) for CHW planes of `size` values.
    public static func batchNormReLU(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, channels: Int, size: Int,
                                     scale: UnsafePointer<Float>, shift: UnsafePointer<Float>) {
        for c in 0..<channels {
            let s = SIMD16<Float>(repeating: scale[c]), t = SIMD16<Float>(repeating: shift[c])
            let ss = scale[c], tt = shift[c]
            let x = UnsafeRawPointer(src + c * size), y = UnsafeMutableRawPointer(dst + c * size)
            var i = 0
            while i + 16 <= size {
                var v = t.addingProduct(x.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self), s)
                v = v.replacing(with: 0, where: v .< 0)
                y.storeBytes(of: v, toByteOffset: i * 4, as: SIMD16<Float>.self)
                i += 16
            }
            while i < size {
                let v = src[c * size + i] * ss + tt
                dst[c * size + i] = v > 0 ? v : 0
                i += 1
            }
        }
    }

    /// BN -> ReLU -> average pool 2x2 stride 2 (floor) of CHW planes h x w into h/2 x w/2. Rows and
    /// planes may be farther apart than the image (`Strides`, for maps stored with a zero border).
    public static func batchNormReLUAvgPool2(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, channels: Int,
                                             height: Int, width: Int, scale: UnsafePointer<Float>, shift: UnsafePointer<Float>,
                                             from: Strides? = nil, to: Strides? = nil) {
        let oh = height / 2, ow = width / 2
        let from = from ?? Strides(row: width, plane: height * width), to = to ?? Strides(row: ow, plane: oh * ow)
        for c in 0..<channels {
            let s = scale[c], t = shift[c]
            let plane = src + c * from.plane
            for oy in 0..<oh {
                let out = dst + c * to.plane + oy * to.row
                let r0 = plane + 2 * oy * from.row, r1 = r0 + from.row
                var ox = 0
                let sv = SIMD8<Float>(repeating: s), tv = SIMD8<Float>(repeating: t)
                while ox + 8 <= ow {
                    let a = UnsafeRawPointer(r0 + 2 * ox).loadUnaligned(as: SIMD16<Float>.self)
                    let b = UnsafeRawPointer(r1 + 2 * ox).loadUnaligned(as: SIMD16<Float>.self)
                    var ae = tv.addingProduct(a.evenHalf, sv), ao = tv.addingProduct(a.oddHalf, sv)
                    var be = tv.addingProduct(b.evenHalf, sv), bo = tv.addingProduct(b.oddHalf, sv)
                    ae = ae.replacing(with: 0, where: ae .< 0); ao = ao.replacing(with: 0, where: ao .< 0)
                    be = be.replacing(with: 0, where: be .< 0); bo = bo.replacing(with: 0, where: bo .< 0)
                    let sum = (ae + ao) + (be + bo)
                    UnsafeMutableRawPointer(out + ox).storeBytes(of: sum * 0.25, as: SIMD8<Float>.self)
                    ox += 8
                }
                while ox < ow {
                    let v0 = max(0, r0[2 * ox] * s + t), v1 = max(0, r0[2 * ox + 1] * s + t)
                    let v2 = max(0, r1[2 * ox] * s + t), v3 = max(0, r1[2 * ox + 1] * s + t)
                    out[ox] = ((v0 + v1) + (v2 + v3)) * 0.25
                    ox += 1
                }
            }
        }
    }

    /// BN -> ReLU -> global average pool of CHW planes into one value per channel.
    public static func batchNormReLUMean(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, channels: Int, size: Int,
                                         scale: UnsafePointer<Float>, shift: UnsafePointer<Float>) {
        for c in 0..<channels {
            let s = SIMD16<Float>(repeating: scale[c]), t = SIMD16<Float>(repeating: shift[c])
            let x = UnsafeRawPointer(src + c * size)
            var acc = SIMD16<Float>()
            var i = 0
            while i + 16 <= size {
                let v = t.addingProduct(x.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self), s)
                acc += v.replacing(with: 0, where: v .< 0)
                i += 16
            }
            var sum = acc.sum()
            while i < size {
                sum += max(0, src[c * size + i] * scale[c] + shift[c])
                i += 1
            }
            dst[c] = sum / Float(size)
        }
    }

    /// Max pooling of CHW planes (padding never wins: it is -infinity), separably: the maxima across
    /// each input row's windows first, then across rows, 16 outputs at a time. Input rows are
    /// `rowStride` floats apart (planes `height * rowStride`), so a wide convolution grid can be read in
    /// place; output rows and planes are `to` apart (default: packed). `outputRows` limits the work to
    /// those rows of the output (the input rows their windows read must be ready).
    public static func maxPool(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, channels: Int, height: Int, width: Int,
                               rowStride: Int? = nil, kernel: Int, stride: Int, padTop: Int, padLeft: Int,
                               outHeight: Int, outWidth: Int, to: Strides? = nil, outputRows: Range<Int>? = nil) {
        let ld = rowStride ?? width
        let to = to ?? Strides(row: outWidth, plane: outHeight * outWidth)
        let outRows = outputRows ?? 0..<outHeight
        guard !outRows.isEmpty else { return }
        let inRows = max(0, outRows.lowerBound * stride - padTop)..<min(height, (outRows.upperBound - 1) * stride - padTop + kernel)
        let rows = UnsafeMutablePointer<Float>.allocate(capacity: height * outWidth)
        defer { rows.deallocate() }
        // Outputs whose window lies inside the row and whose 16-wide loads (stride 2) stay inside it.
        let first = min(outWidth, (padLeft + stride - 1) / stride)
        for c in 0..<channels {
            let plane = src + c * height * ld
            for y in inRows {
                let line = plane + y * ld, out = rows + y * outWidth
                var ox = 0
                func scalar(_ ox: Int) {
                    let x0 = max(0, ox * stride - padLeft), x1 = min(width, ox * stride - padLeft + kernel)
                    var m = -Float.infinity
                    for x in x0..<max(x0, x1) { m = max(m, line[x]) }
                    out[ox] = m
                }
                while ox < first { scalar(ox); ox += 1 }
                if stride == 2 {
                    // 8 outputs from 16-wide loads at each tap: the even lanes are the window's columns.
                    // Outputs [o, o + 8) qualify when their windows lie inside the image and the loads
                    // inside the row (its stride); the last group may overlap the one before it.
                    func fits(_ o: Int) -> Bool {
                        o >= first && o + 8 <= outWidth && 2 * (o + 7) - padLeft + kernel <= width && 2 * o - padLeft + kernel + 15 <= ld
                    }
                    func eight(_ o: Int) {
                        let base = UnsafeRawPointer(line + 2 * o - padLeft)
                        var m = base.loadUnaligned(as: SIMD16<Float>.self).evenHalf
                        for j in 1..<max(1, kernel) {
                            let v = base.loadUnaligned(fromByteOffset: j * 4, as: SIMD16<Float>.self).evenHalf
                            m.replace(with: v, where: v .> m)
                        }
                        UnsafeMutableRawPointer(out + o).storeBytes(of: m, as: SIMD8<Float>.self)
                    }
                    while fits(ox) { eight(ox); ox += 8 }
                    if ox < outWidth && outWidth - 8 < ox && fits(outWidth - 8) {
                        eight(outWidth - 8)
                        ox = outWidth
                    }
                }
                while ox < outWidth { scalar(ox); ox += 1 }
            }
            for oy in outRows {
                let y0 = max(0, oy * stride - padTop), y1 = min(height, oy * stride - padTop + kernel)
                let out = dst + c * to.plane + oy * to.row
                guard y0 < y1 else { out.update(repeating: -.infinity, count: outWidth); continue }
                out.update(from: rows + y0 * outWidth, count: outWidth)
                for y in (y0 + 1)..<y1 {
                    let row = rows + y * outWidth
                    func sixteen(_ x: Int) {
                        var a = UnsafeRawPointer(out + x).loadUnaligned(as: SIMD16<Float>.self)
                        let b = UnsafeRawPointer(row + x).loadUnaligned(as: SIMD16<Float>.self)
                        a.replace(with: b, where: b .> a)
                        UnsafeMutableRawPointer(out + x).storeBytes(of: a, as: SIMD16<Float>.self)
                    }
                    var x = 0
                    while x + 16 <= outWidth { sixteen(x); x += 16 }
                    // The last 16 again, overlapping: a maximum taken twice is the same maximum.
                    if x < outWidth && outWidth >= 16 { sixteen(outWidth - 16); x = outWidth }
                    while x < outWidth { out[x] = max(out[x], row[x]); x += 1 }
                }
            }
        }
    }
}

extension Elementwise {
    /// y = W x + b for W (out, in) row-major: one SIMD dot product per output.
    public static func matVec(_ w: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                              rows: Int, cols: Int, into y: UnsafeMutablePointer<Float>) {
        for o in 0..<rows {
            let row = UnsafeRawPointer(w + o * cols), input = UnsafeRawPointer(x)
            var acc = SIMD16<Float>()
            var i = 0
            while i + 16 <= cols {
                acc = acc.addingProduct(row.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self),
                                        input.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self))
                i += 16
            }
            var sum = acc.sum()
            while i < cols {
                sum += w[o * cols + i] * x[i]
                i += 1
            }
            y[o] = sum + (bias?[o] ?? 0)
        }
    }
}
