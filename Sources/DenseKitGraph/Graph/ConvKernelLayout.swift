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
        // (outputs, inputs, kernelHeight, kernelWidth) whatever the order.
        let (outputs, inputs, kernelHeight, kernelWidth) =
            from == .oihw ? (shape[0], shape[1], shape[2], shape[3]) : (shape[3], shape[2], shape[0], shape[1])
        let source = values
        var out = [Float](repeating: 0, count: source.count)
        for a in 0..<outputs {
            for b in 0..<inputs {
                for y in 0..<kernelHeight {
                    for x in 0..<kernelWidth {
                        let oihw = ((a * inputs + b) * kernelHeight + y) * kernelWidth + x
                        let hwio = ((y * kernelWidth + x) * inputs + b) * outputs + a
                        if from == .oihw { out[hwio] = source[oihw] } else { out[oihw] = source[hwio] }
                    }
                }
            }
        }
        return Tensor(
            name: name,
            shape: to == .oihw
                ? [outputs, inputs, kernelHeight, kernelWidth] : [kernelHeight, kernelWidth, inputs, outputs],
            storedDType: storedDType, values: out)
    }
}
