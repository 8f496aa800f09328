/// The two orders 4-D conv kernels come in: OIHW (ONNX, torch, DenseKit's canonical graph) and
/// HWIO (Keras, TensorFlow).
public enum ConvKernelLayout: Sendable {
    case oihw, hwio
}

extension Tensor {
    /// This 4-D kernel, stored in `from`, rearranged into `to` (same values, new order and shape).
    /// Only for a tensor whose values match its shape (the importers check that first).
    public func permuted(_ from: ConvKernelLayout, to: ConvKernelLayout) -> Tensor {
        guard from != to, shape.count == 4 else { return self }
        // (o, i, h, w) whatever the order.
        let (o, i, h, w) =
            from == .oihw ? (shape[0], shape[1], shape[2], shape[3]) : (shape[3], shape[2], shape[0], shape[1])
        let v = values
        var out = [Float](repeating: 0, count: v.count)
        for a in 0..<o {
            for b in 0..<i {
                for y in 0..<h {
                    for x in 0..<w {
                        let oihw = ((a * i + b) * h + y) * w + x
                        let hwio = ((y * w + x) * i + b) * o + a
                        if from == .oihw { out[hwio] = v[oihw] } else { out[oihw] = v[hwio] }
                    }
                }
            }
        }
        return Tensor(
            name: name, shape: to == .oihw ? [o, i, h, w] : [h, w, i, o], storedDType: storedDType, values: out)
    }
}
