import DenseKitGraph

extension QuantizedInputTransform {
    /// The code the stem reads for each code of the input, in onnxruntime's arithmetic: entry i is for the code
    /// `input.storage.range.lowerBound + i` (256 entries).
    package func codeTable() -> [Int32] {
        input.storage.range.map { code in
            var (value, quantization) = (code, input)
            for step in steps {
                switch step.operation {
                case .multiply:
                    value = OnnxruntimeArithmetic.multiply(
                        value, quantization, by: step.constant, step.constantQuantization, to: step.output)
                case .add:
                    value = OnnxruntimeArithmetic.add(
                        value, quantization, step.constant, step.constantQuantization, to: step.output)
                }
                quantization = step.output
            }
            return value
        }
    }
}
