extension Elementwise {
    /// Anti-aliased downsampling of `channels` dense CHW maps: each padded by `padding` rows and columns
    /// mirrored without repeating the edge (reflection; `padding < height, width`), then filtered with the
    /// outer product of `coefficients` with itself at `stride`. Computed separably: each output row is the
    /// vertical filter of its input rows (16 columns at a time), then the horizontal filter of that row.
    public static func blurPool(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, channels: Int, height: Int, width: Int,
        coefficients: [Float], stride: Int, padding: Int, outHeight: Int, outWidth: Int, to: Strides
    ) {
        let kernel = coefficients.count
        let row = UnsafeMutablePointer<Float>.allocate(capacity: width)
        defer { row.deallocate() }
        for c in 0..<channels {
            let plane = src + c * height * width
            for oy in 0..<outHeight {
                let taps = (0..<kernel).map { plane + reflect(oy * stride - padding + $0, height) * width }
                var x = 0
                while x + 16 <= width {
                    var sum = SIMD16<Float>(repeating: 0)
                    for (tap, weight) in zip(taps, coefficients) {
                        sum += UnsafeRawPointer(tap + x).loadUnaligned(as: SIMD16<Float>.self) * weight
                    }
                    UnsafeMutableRawPointer(row + x).storeBytes(of: sum, as: SIMD16<Float>.self)
                    x += 16
                }
                while x < width {
                    var sum: Float = 0
                    for (tap, weight) in zip(taps, coefficients) { sum += tap[x] * weight }
                    row[x] = sum
                    x += 1
                }
                let out = dst + c * to.plane + oy * to.row
                for ox in 0..<outWidth {
                    var sum: Float = 0
                    for k in 0..<kernel { sum += row[reflect(ox * stride - padding + k, width)] * coefficients[k] }
                    out[ox] = sum
                }
            }
        }
    }

    /// Position `index` of a line of `count` values padded by reflection (`-1` is `1`, `count` is `count - 2`).
    @inline(__always)
    static func reflect(_ index: Int, _ count: Int) -> Int {
        index < 0 ? -index : index >= count ? 2 * (count - 1) - index : index
    }
}

extension Reference {
    /// Reflection padding, then a depthwise filter of the outer product of `coefficients` with itself at
    /// `stride`: timm's `BlurPool2d` written as torch computes it (padded map, then a 2-D window).
    public static func blurPool(
        _ input: [Float], channels: Int, height: Int, width: Int, coefficients: [Float], stride: Int, padding: Int
    ) -> (values: [Float], height: Int, width: Int) {
        let kernel = coefficients.count
        let (paddedHeight, paddedWidth) = (height + 2 * padding, width + 2 * padding)
        func source(_ index: Int, _ count: Int) -> Int {
            let i = index - padding
            return i < 0 ? -i : i >= count ? 2 * (count - 1) - i : i
        }
        let oh = (paddedHeight - kernel) / stride + 1
        let ow = (paddedWidth - kernel) / stride + 1
        var output = [Float](repeating: 0, count: channels * oh * ow)
        for c in 0..<channels {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    var acc: Float = 0
                    for ky in 0..<kernel {
                        for kx in 0..<kernel {
                            let iy = source(oy * stride + ky, height)
                            let ix = source(ox * stride + kx, width)
                            acc += input[(c * height + iy) * width + ix] * (coefficients[ky] * coefficients[kx])
                        }
                    }
                    output[(c * oh + oy) * ow + ox] = acc
                }
            }
        }
        return (output, oh, ow)
    }
}
