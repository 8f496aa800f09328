/// An int8 model's preprocessing computed on codes (onnxruntime's QLinearMul and QLinearAdd of a stored constant
/// between the input's QuantizeLinear and the stem, as its quantiser writes a Keras `Rescaling`): the input is
/// quantised to `input`, then each step multiplies or adds its constant and requantises to its own `output`. The
/// transform's float `scale` and `offset` say the same in real values; the integer executor runs these steps.
public struct QuantizedInputTransform: Sendable, Equatable {
    public struct Step: Sendable, Equatable {
        public enum Operation: String, Sendable, Codable {
            case multiply, add
        }

        public var operation: Operation
        /// The stored constant: one code for every channel, with its quantisation (per tensor).
        public var constant: Int32
        public var constantQuantization: Quantization
        /// The quantisation the step's result is rounded to.
        public var output: Quantization
        /// Where the file holds it (`QLinearMul node 'model/rescaling/mul_quant'`).
        public var origin: String

        public init(
            operation: Operation, constant: Int32, constantQuantization: Quantization, output: Quantization,
            origin: String
        ) {
            self.operation = operation
            self.constant = constant
            self.constantQuantization = constantQuantization
            self.output = output
            self.origin = origin
        }

        /// The constant's real value.
        public var value: Float {
            Float(constant &- constantQuantization.zeroPoints[0]) * constantQuantization.scales[0]
        }
    }

    /// The quantisation of the input before the first step (its QuantizeLinear).
    public var input: Quantization
    public var steps: [Step]

    public init(input: Quantization, steps: [Step]) {
        self.input = input
        self.steps = steps
    }

    /// The quantisation of what the stem reads: the last step's output.
    public var output: Quantization { steps.last?.output ?? input }

    /// The same preprocessing in real values over `channels` channels (each multiplication a scale, each addition
    /// an offset) that carries these steps; nil without steps.
    public func floatTransform(channels: Int) -> InputTransform? {
        var transform: InputTransform? = nil
        for step in steps {
            let value = step.value
            let next = InputTransform(
                scale: [step.operation == .multiply ? value : 1], offset: [step.operation == .add ? value : 0],
                channels: channels, origin: step.origin)
            transform = transform.map { $0.followed(by: next) } ?? next
        }
        transform?.quantized = self
        return transform
    }
}
