/// The orders 4-D conv kernels come in: OIHW (ONNX, torch, DenseKit's canonical graph), HWIO (Keras,
/// TensorFlow) and OHWI (TensorFlow Lite).
public enum ConvKernelLayout: Sendable {
    case oihw, hwio, ohwi

    /// (outputs, inputs, kernelHeight, kernelWidth) of a kernel of `shape` in this order.
    fileprivate func dimensions(_ shape: [Int]) -> (Int, Int, Int, Int) {
        switch self {
        case .oihw: (shape[0], shape[1], shape[2], shape[3])
        case .hwio: (shape[3], shape[2], shape[0], shape[1])
        case .ohwi: (shape[0], shape[3], shape[1], shape[2])
        }
    }

    /// The shape of such a kernel in this order.
    fileprivate func shape(_ outputs: Int, _ inputs: Int, _ height: Int, _ width: Int) -> [Int] {
        switch self {
        case .oihw: [outputs, inputs, height, width]
        case .hwio: [height, width, inputs, outputs]
        case .ohwi: [outputs, height, width, inputs]
        }
    }

    /// The distances between consecutive outputs, inputs, rows and columns of such a kernel in this order.
    fileprivate func strides(_ outputs: Int, _ inputs: Int, _ height: Int, _ width: Int) -> (Int, Int, Int, Int) {
        switch self {
        case .oihw: (inputs * height * width, height * width, width, 1)
        case .hwio: (1, outputs, width * inputs * outputs, inputs * outputs)
        case .ohwi: (height * width * inputs, 1, width * inputs, inputs)
        }
    }
}

extension Tensor {
    /// This 4-D kernel, stored in `from`, rearranged into `to` (same values, new order and shape); integer codes
    /// move with their values, and a per-channel quantisation's axis with its dimension.
    /// Only for a tensor whose values match its shape (the importers check that first).
    public func permuted(_ from: ConvKernelLayout, to: ConvKernelLayout) -> Tensor {
        guard from != to, shape.count == 4 else { return self }
        let (outputs, inputs, kernelHeight, kernelWidth) = from.dimensions(shape)
        let source = from.strides(outputs, inputs, kernelHeight, kernelWidth)
        let target = to.strides(outputs, inputs, kernelHeight, kernelWidth)
        func rearranged<T>(_ values: [T], zero: T) -> [T] {
            var out = [T](repeating: zero, count: values.count)
            for a in 0..<outputs {
                for b in 0..<inputs {
                    for y in 0..<kernelHeight {
                        for x in 0..<kernelWidth {
                            out[a * target.0 + b * target.1 + y * target.2 + x * target.3] =
                                values[a * source.0 + b * source.1 + y * source.2 + x * source.3]
                        }
                    }
                }
            }
            return out
        }
        var result = Tensor(
            name: name, shape: to.shape(outputs, inputs, kernelHeight, kernelWidth), storedDType: storedDType,
            values: rearranged(values, zero: 0))
        if var quantized, quantized.codes.count == values.count {
            // The axis names a dimension; find where that dimension's role (output, input, row, column) lands.
            let roles = from.shape(0, 1, 2, 3)
            quantized.quantization.axis = quantized.quantization.axis.map { axis in
                roles.indices.contains(axis) ? to.shape(0, 1, 2, 3).firstIndex(of: roles[axis]) ?? axis : axis
            }
            quantized.codes = rearranged(quantized.codes, zero: 0)
            result.quantized = quantized
        }
        return result
    }
}
