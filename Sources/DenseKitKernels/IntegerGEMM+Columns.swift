extension IntegerGEMM {
    /// B: rows of K in pairs, each pair interleaved column by column (value (k, j) at
    /// (k / 2) x 2 x `rowLength` + 2 j + k % 2), read by the tile through each tap's view; every value not read from
    /// the map zero.
    ///
    /// `columns`: im2col, a row for each (channel, kernel tap), N padded to whole tiles. `shifted`: a row for each
    /// channel, the map bordered by kernel / 2 zeros on every side (a row of the bordered map `spanWidth` wide); tap
    /// (ky, kx) reads it from column ky x `spanWidth` + kx, so that computed column j = oy x `spanWidth` + ox is output
    /// (oy, ox), and the border's columns in between are computed and dropped.
    public struct Columns {
        public let k: Int
        /// Output positions.
        public let n: Int
        public let arrangement: Arrangement
        /// Columns the GEMM computes: whole tiles, covering every output.
        let computedColumns: Int
        /// Values in a row of B (per pair half).
        let rowLength: Int
        let pairsPerTap: Int
        /// The column each tap's view starts at.
        let tapOffsets: [Int]
        /// Outputs per output row, and computed columns from one output row to the next.
        let outputWidth: Int
        let spanWidth: Int
        var storage: [Int16]

        /// The layout of a convolution's columns, `Arrangement.of` its geometry, with storage not yet written.
        private init(channels: Int, height: Int, width: Int, kernel: Int, stride: Int, pads: [Int]) {
            let oh = (height + pads[0] + pads[2] - kernel) / stride + 1
            let ow = (width + pads[1] + pads[3] - kernel) / stride + 1
            k = channels * kernel * kernel
            n = oh * ow
            arrangement = Arrangement.of(kernel: kernel, stride: stride, pads: pads)
            outputWidth = ow
            let tile = IntegerGEMM.tileColumns
            if case .shifted = arrangement {
                let border = kernel / 2
                spanWidth = width + 2 * border
                computedColumns = ((oh - 1) * spanWidth + ow + tile - 1) / tile * tile
                // The last tap reads (kernel - 1) rows and columns past a computed column.
                rowLength = computedColumns + (kernel - 1) * (spanWidth + 1)
                pairsPerTap = (channels + 1) / 2
                let span = spanWidth
                tapOffsets = (0..<kernel * kernel).map { tap in tap / kernel * span + tap % kernel }
            } else {
                spanWidth = ow
                computedColumns = (n + tile - 1) / tile * tile
                rowLength = computedColumns
                pairsPerTap = (k + 1) / 2
                tapOffsets = [0]
            }
            let count = ((arrangement == .columns ? k : channels) + 1) / 2 * 2 * rowLength
            // Every value is written once by the caller, zeros included (a zero-filled copy first was 3% of a run).
            storage = [Int16](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
        }

        /// The columns of a pointwise convolution of a `channels` x `height` x `width` map that `planes` makes a plane
        /// at a time (channel c's codes into the buffer given), less `zeroPoint`: for a map made just before the conv
        /// (a BatchNorm's), whose whole is never written (it was, and read again, 5% of an int8 run).
        public init(
            pointwise channels: Int, height: Int, width: Int, zeroPoint: Int32,
            planes: (_ channel: Int, _ into: UnsafeMutablePointer<Int32>) -> Void
        ) {
            self.init(channels: channels, height: height, width: width, kernel: 1, stride: 1, pads: [0, 0, 0, 0])
            let plane = height * width
            let scratch = UnsafeMutablePointer<Int32>.allocate(capacity: max(2 * plane, 1))
            defer { scratch.deallocate() }
            writePointwise(channels: channels, plane: plane, zeroPoint: zeroPoint) { c in
                let buffer = scratch + c % 2 * plane
                planes(c, buffer)
                return UnsafePointer(buffer)
            }
        }

        /// The columns of a convolution over `codes` (CHW) less `zeroPoint`, arranged as `Arrangement.of` says for
        /// its geometry; 0 where the conv reads padding (whose code is the zero point). A linear layer is a 1 x 1
        /// convolution of a 1 x 1 map.
        public init(
            convolving codes: UnsafeBufferPointer<Int32>, zeroPoint: Int32, channels: Int, height: Int, width: Int,
            kernel: Int, stride: Int, pads: [Int]
        ) {
            precondition(codes.count == channels * height * width, "IntegerGEMM: \(codes.count) codes for the map")
            self.init(channels: channels, height: height, width: width, kernel: kernel, stride: stride, pads: pads)
            guard let source = codes.baseAddress else {
                storage.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
                return
            }
            if kernel == 1 && stride == 1 && pads.allSatisfy({ $0 == 0 }) {
                // Row c is channel c's plane.
                let plane = height * width
                writePointwise(channels: channels, plane: plane, zeroPoint: zeroPoint) { c in source + c * plane }
                return
            }
            let oh = (height + pads[0] + pads[2] - kernel) / stride + 1
            let (k, n, ow, rowPair, arrangement) = (k, n, outputWidth, 2 * rowLength, arrangement)
            storage.withUnsafeMutableBufferPointer { out in
                let target = out.baseAddress!
                if case .shifted(let kernel) = arrangement {
                    // Zeros, then each row of the map inside its border.
                    out.update(repeating: 0)
                    let (border, span) = (kernel / 2, width + 2 * (kernel / 2))
                    for c in Swift.stride(from: 0, to: channels, by: 2) {
                        for y in 0..<height {
                            let first = source + (c * height + y) * width
                            Self.interleave(
                                first, c + 1 < channels ? first + height * width : nil, count: width, less: zeroPoint,
                                into: target + c / 2 * rowPair + 2 * ((y + border) * span + border))
                        }
                    }
                    return
                }
                // im2col: the padding columns, and the upper row of the last pair when K is odd, then every row.
                Self.zeroPadding(target, pairs: (k + 1) / 2, rowPair: rowPair, columns: n, oddRows: k % 2 == 1)
                for c in 0..<channels {
                    for ky in 0..<kernel {
                        for kx in 0..<kernel {
                            let row = (c * kernel + ky) * kernel + kx
                            let line = target + row / 2 * rowPair + row % 2
                            // The output columns whose input column ox x stride - pad + kx is inside the map.
                            let shift = kx - pads[1]
                            let first = max(0, (-shift + stride - 1) / stride)
                            let last = width - 1 - shift < 0 ? 0 : min(ow, (width - 1 - shift) / stride + 1)
                            for oy in 0..<oh {
                                let iy = oy * stride - pads[0] + ky
                                let output = line + 2 * oy * ow
                                // Where the tap reads padding, 0 (the zero point less itself).
                                if iy < 0 || iy >= height || first >= last {
                                    for ox in 0..<ow { output[2 * ox] = 0 }
                                    continue
                                }
                                let input = source + (c * height + iy) * width + shift
                                for ox in 0..<first { output[2 * ox] = 0 }
                                for ox in first..<last {
                                    output[2 * ox] = Int16(truncatingIfNeeded: input[ox * stride] &- zeroPoint)
                                }
                                for ox in last..<ow { output[2 * ox] = 0 }
                            }
                        }
                    }
                }
            }
        }

        /// Pointwise columns: row c is channel c's plane, which `plane(c)` gives (two planes interleaved per pair,
        /// `plane(c)` asked for c and then c + 1), then the padding columns' zeros.
        private mutating func writePointwise(
            channels: Int, plane: Int, zeroPoint: Int32, _ source: (Int) -> UnsafePointer<Int32>
        ) {
            let (n, rowPair) = (n, 2 * rowLength)
            storage.withUnsafeMutableBufferPointer { out in
                let target = out.baseAddress!
                Self.zeroPadding(target, pairs: (channels + 1) / 2, rowPair: rowPair, columns: n, oddRows: false)
                for c in Swift.stride(from: 0, to: channels, by: 2) {
                    let first = source(c)
                    Self.interleave(
                        first, c + 1 < channels ? source(c + 1) : nil, count: plane, less: zeroPoint,
                        into: target + c / 2 * rowPair)
                }
            }
        }

        /// Zeros in each of `pairs` rows of pairs past its first `columns`, and, when `oddRows`, in the last pair's
        /// upper row.
        private static func zeroPadding(
            _ target: UnsafeMutablePointer<Int16>, pairs: Int, rowPair: Int, columns: Int, oddRows: Bool
        ) {
            for pair in 0..<pairs {
                (target + pair * rowPair + 2 * columns).update(repeating: 0, count: rowPair - 2 * columns)
            }
            if oddRows, pairs > 0 {
                let upper = target + (pairs - 1) * rowPair + 1
                for j in 0..<columns { upper[2 * j] = 0 }
            }
        }

        /// `count` codes at `first` and at `second` (zeros without one) less `zero`, interleaved at `target`: 8 of each
        /// a step.
        private static func interleave(
            _ first: UnsafePointer<Int32>, _ second: UnsafePointer<Int32>?, count: Int, less zero: Int32,
            into target: UnsafeMutablePointer<Int16>
        ) {
            guard let second else {
                for j in 0..<count {
                    target[2 * j] = Int16(truncatingIfNeeded: first[j] &- zero)
                    target[2 * j + 1] = 0
                }
                return
            }
            let zeros = SIMD8<Int32>(repeating: zero)
            var j = 0
            while j + 8 <= count {
                var both = SIMD16<Int16>()
                both.evenHalf = SIMD8<Int16>(
                    truncatingIfNeeded: UnsafeRawPointer(first + j).loadUnaligned(as: SIMD8<Int32>.self) &- zeros)
                both.oddHalf = SIMD8<Int16>(
                    truncatingIfNeeded: UnsafeRawPointer(second + j).loadUnaligned(as: SIMD8<Int32>.self) &- zeros)
                UnsafeMutableRawPointer(target + 2 * j).storeBytes(of: both, as: SIMD16<Int16>.self)
                j += 8
            }
            for j in j..<count {
                target[2 * j] = Int16(truncatingIfNeeded: first[j] &- zero)
                target[2 * j + 1] = Int16(truncatingIfNeeded: second[j] &- zero)
            }
        }
    }
}
