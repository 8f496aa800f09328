/// Preprocessing a model applies to its own input before the stem (Keras `Rescaling` and
/// `Normalization` layers, Mul and Add nodes on an ONNX input): per input channel c,
/// `x * scale[c] + offset[c]`. Canonical layer names do not change: it is part of the input, not a layer.
public struct InputTransform: Sendable, Equatable {
    public var scale: [Float]
    public var offset: [Float]
    /// What the file holds, in its own terms (`Rescaling 'rescaling' (scale 0.00784, offset -1)`).
    public var origin: [String]
    /// How an int8 model computes the same on the input's codes, when it does (its integer executor runs these
    /// steps; everything else reads `scale` and `offset`).
    public var quantized: QuantizedInputTransform? = nil

    public init(scale: [Float], offset: [Float], origin: [String]) {
        self.scale = scale
        self.offset = offset
        self.origin = origin
    }

    /// A per-channel (or, with one value, every-channel) scale and offset.
    public init(scale: [Float], offset: [Float], channels: Int, origin: String) {
        self.scale = scale.count == 1 ? [Float](repeating: scale[0], count: channels) : scale
        self.offset = offset.count == 1 ? [Float](repeating: offset[0], count: channels) : offset
        self.origin = [origin]
    }

    public var channels: Int { scale.count }

    /// This transform, then `next`: x * (s1 s2) + (o1 s2 + o2) (float steps: neither is quantised).
    public func followed(by next: InputTransform) -> InputTransform {
        InputTransform(
            scale: zip(scale, next.scale).map { $0 * $1 },
            offset: offset.indices.map { offset[$0] * next.scale[$0] + next.offset[$0] },
            origin: origin + next.origin)
    }

    /// `x * 0.007843138 + -1.0`, or per channel `x * [0.017, 0.017, 0.017] + [-1.77, -1.99, -2.1]`.
    public var summary: String {
        func list(_ values: [Float]) -> String {
            Set(values).count == 1 ? "\(values[0])" : "[" + values.map { "\($0)" }.joined(separator: ", ") + "]"
        }
        return "x * \(list(scale)) + \(list(offset))"
    }

    /// Applies the transform in place to `count` values of one image in CHW order.
    public func apply(toCHW values: UnsafeMutablePointer<Float>, count: Int) {
        let plane = count / max(channels, 1)
        for c in 0..<channels {
            let (s, o) = (scale[c], offset[c])
            let base = values + c * plane
            for i in 0..<plane { base[i] = base[i] * s + o }
        }
    }
}
