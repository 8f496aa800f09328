import DenseKitGraph

extension QuantizedInputTransform {
    /// The code the stem reads for each code of the input, in `arithmetic`: entry i is for the code
    /// `input.storage.range.lowerBound + i` (256 entries).
    package func codeTable(_ arithmetic: IntegerArithmetic) -> [Int32] {
        input.storage.range.map { code in
            var (value, quantization) = (code, input)
            for step in steps {
                let (k, kq) = (step.constant, step.constantQuantization)
                switch (step.operation, arithmetic) {
                case (.multiply, .onnxruntime):
                    value = OnnxruntimeArithmetic.multiply(value, quantization, by: k, kq, to: step.output)
                case (.add, .onnxruntime):
                    value = OnnxruntimeArithmetic.add(value, quantization, k, kq, to: step.output)
                case (.multiply, .tflite):
                    value = TFLiteArithmetic.MultiplyKernel(input: quantization, factor: kq, output: step.output)(
                        value, k)
                case (.add, .tflite):
                    value = TFLiteArithmetic.AddKernel(first: quantization, second: kq, output: step.output)(value, k)
                }
                quantization = step.output
            }
            return value
        }
    }
}
