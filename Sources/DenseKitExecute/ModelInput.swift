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
    public init(shape: [Int], values source: [Float], layout: InputSpec.Layout?, for net: DenseNet) throws {
        if let first = source.firstIndex(where: { !$0.isFinite }) {
            var index: [Int] = []
            var rest = first
            for dimension in shape.reversed() where dimension > 0 {
                index.insert(rest % dimension, at: 0)
                rest /= dimension
            }
            throw ExecutionError.nonFiniteInput(index: index, value: source[first])
        }
        let layout = layout ?? net.input.layout
        let expected = net.input.expectedShape(in: layout)
        guard shape.count == 4 else { throw ExecutionError.inputShape(expected: expected, found: shape) }
        let (images, channels, imageHeight, imageWidth) =
            layout == .nchw ? (shape[0], shape[1], shape[2], shape[3]) : (shape[0], shape[3], shape[1], shape[2])
        let side = 1...DenseNet.Limits.inputSide
        guard images > 0, channels == net.input.channels, side.contains(imageHeight), side.contains(imageWidth),
            net.input.height.map({ $0 == imageHeight }) ?? true, net.input.width.map({ $0 == imageWidth }) ?? true
        else {
            throw ExecutionError.inputShape(expected: expected, found: shape)
        }
        batch = images
        height = imageHeight
        width = imageWidth
        if layout == .nchw {
            values = source
        } else {
            var reordered = [Float](repeating: 0, count: source.count)
            let src = source
            for b in 0..<images {
                for y in 0..<imageHeight {
                    for x in 0..<imageWidth {
                        for ch in 0..<channels {
                            reordered[((b * channels + ch) * imageHeight + y) * imageWidth + x] =
                                src[((b * imageHeight + y) * imageWidth + x) * channels + ch]
                        }
                    }
                }
            }
            values = reordered
        }
    }
}

extension InputSpec {
    /// "[N, 3, 224, 224] (NCHW)" in the given layout, "?" where the model leaves a size open.
    public func expectedShape(in layout: Layout) -> String {
        let text = { (v: Int?) in v.map(String.init) ?? "?" }
        switch layout {
        case .nchw: return "[N, \(channels), \(text(height)), \(text(width))] (NCHW)"
        case .nhwc: return "[N, \(text(height)), \(text(width)), \(channels)] (NHWC)"
        }
    }
}
