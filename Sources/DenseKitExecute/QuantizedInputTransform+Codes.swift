import DenseKitGraph

extension QuantizedInputTransform {
    /// The code the stem reads for each code of the input in channel `channel`, in `arithmetic`: entry i is for the
    /// code `input.storage.range.lowerBound + i` (256 entries).
    package func codeTable(_ arithmetic: IntegerArithmetic, channel: Int = 0) -> [Int32] {
        input.storage.range.map { code in
            var (value, quantization) = (code, input)
            for step in steps {
                let (k, kq) = (step.constant(channel: channel), step.constantQuantization)
                switch (step.operation, arithmetic) {
                case (.multiply, .onnxruntime):
                    value = OnnxruntimeArithmetic.multiply(value, quantization, by: k, kq, to: step.output)
                case (.add, .onnxruntime):
                    value = OnnxruntimeArithmetic.add(value, quantization, k, kq, to: step.output)
                case (.subtract, .onnxruntime):
                    // Refused by the validation (onnxruntime has no integer Sub): a float Sub between quantisations.
                    let real =
                        OnnxruntimeArithmetic.dequantize(
                            value, scale: quantization.scales[0], zeroPoint: quantization.zeroPoints[0])
                        - OnnxruntimeArithmetic.dequantize(k, scale: kq.scales[0], zeroPoint: kq.zeroPoints[0])
                    value = OnnxruntimeArithmetic.quantize(
                        real, scale: step.output.scales[0], zeroPoint: step.output.zeroPoints[0],
                        range: step.output.storage.range)
                case (.multiply, .tflite):
                    value = TFLiteArithmetic.MultiplyKernel(input: quantization, factor: kq, output: step.output)(
                        value, k)
                case (.add, .tflite):
                    value = TFLiteArithmetic.AddKernel(first: quantization, second: kq, output: step.output)(value, k)
                case (.subtract, .tflite):
                    value = TFLiteArithmetic.AddKernel(
                        first: quantization, second: kq, output: step.output, subtracting: true)(value, k)
                }
                quantization = step.output
            }
            return value
        }
    }
}
