import DenseKitGraph

/// An input batch converted to the executor's NCHW layout and checked against the model.
public struct ModelInput: Sendable {
    public var batch: Int
    public var height: Int
    public var width: Int
    /// NCHW values.
    public var values: [Float]

    /// Values already in NCHW order.
    public init(batch: Int, height: Int, width: Int, values: [Float]) {
        self.batch = batch
        self.height = height
        self.width = width
        self.values = values
    }

    /// `values` of `shape` in `layout` (default: the model's own input layout). Rank 4 only; channels,
    /// and height and width where the model fixes them, must match the model. Every value must be
    /// finite: the executor's ReLU (a max with 0) would drop a NaN where torch and onnxruntime
    /// propagate it, and give a confident answer for an image that has none.
    public init(shape s: [Int], values source: [Float], layout: InputSpec.Layout?, for net: DenseNet) throws {
        if let first = source.firstIndex(where: { !$0.isFinite }) {
            var index: [Int] = []
            var rest = first
            for dimension in s.reversed() where dimension > 0 {
                index.insert(rest % dimension, at: 0)
                rest /= dimension
            }
            throw ExecutionError.nonFiniteInput(index: index, value: source[first])
        }
        let layout = layout ?? net.input.layout
        let expected = net.input.expectedShape(in: layout)
        guard s.count == 4 else { throw ExecutionError.inputShape(expected: expected, found: s) }
        let (n, c, h, w) = layout == .nchw ? (s[0], s[1], s[2], s[3]) : (s[0], s[3], s[1], s[2])
        let side = 1...DenseNet.Limits.inputSide
        guard n > 0, c == net.input.channels, side.contains(h), side.contains(w),
            net.input.height.map({ $0 == h }) ?? true, net.input.width.map({ $0 == w }) ?? true
        else {
            throw ExecutionError.inputShape(expected: expected, found: s)
        }
        batch = n
        height = h
        width = w
        if layout == .nchw {
            values = source
        } else {
            var v = [Float](repeating: 0, count: source.count)
            let src = source
            for b in 0..<n {
                for y in 0..<h {
                    for x in 0..<w {
                        for ch in 0..<c { v[((b * c + ch) * h + y) * w + x] = src[((b * h + y) * w + x) * c + ch] }
                    }
                }
            }
            values = v
        }
    }
}

extension InputSpec {
    /// "[N, 3, 224, 224] (NCHW)" in the given layout, "?" where the model leaves a size open.
    public func expectedShape(in layout: Layout) -> String {
        let d = { (v: Int?) in v.map(String.init) ?? "?" }
        switch layout {
        case .nchw: return "[N, \(channels), \(d(height)), \(d(width))] (NCHW)"
        case .nhwc: return "[N, \(d(height)), \(d(width)), \(channels)] (NHWC)"
        }
    }
}
