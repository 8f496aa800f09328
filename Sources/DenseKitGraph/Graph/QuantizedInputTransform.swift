/// An int8 model's preprocessing computed on codes (onnxruntime's QLinearMul and QLinearAdd of a stored constant
/// between the input's QuantizeLinear and the stem, as its quantiser writes a Keras `Rescaling`; TensorFlow Lite's
/// int8 MUL, ADD and SUB, as its converter writes a `Rescaling` or a `Normalization`): the input is quantised to
/// `input`, then each step multiplies, adds or subtracts its constant and requantises to its own `output`. The
/// transform's float `scale` and `offset` say the same in real values; the integer executor runs these steps.
public struct QuantizedInputTransform: Sendable, Equatable {
    public struct Step: Sendable, Equatable {
        public enum Operation: String, Sendable, Codable {
            case multiply, add, subtract
        }

        public var operation: Operation
        /// The stored constant's codes: one for every channel, or one per input channel; with their quantisation
        /// (per tensor).
        public var constants: [Int32]
        public var constantQuantization: Quantization
        /// The quantisation the step's result is rounded to.
        public var output: Quantization
        /// Where the file holds it (`QLinearMul node 'model/rescaling/mul_quant'`).
        public var origin: String

        public init(
            operation: Operation, constants: [Int32], constantQuantization: Quantization, output: Quantization,
            origin: String
        ) {
            self.operation = operation
            self.constants = constants
            self.constantQuantization = constantQuantization
            self.output = output
            self.origin = origin
        }

        /// The constant's code for input channel `channel`.
        public func constant(channel: Int) -> Int32 { constants.count == 1 ? constants[0] : constants[channel] }

        /// The constant's real values.
        public var values: [Float] {
            constants.map { Float($0 &- constantQuantization.zeroPoints[0]) * constantQuantization.scales[0] }
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
    /// or subtraction an offset) that carries these steps; nil without steps.
    public func floatTransform(channels: Int) -> InputTransform? {
        var transform: InputTransform? = nil
        for step in steps {
            let values = step.values
            let next =
                switch step.operation {
                case .multiply: InputTransform(scale: values, offset: [0], channels: channels, origin: step.origin)
                case .add: InputTransform(scale: [1], offset: values, channels: channels, origin: step.origin)
                case .subtract:
                    InputTransform(scale: [1], offset: values.map { -$0 }, channels: channels, origin: step.origin)
                }
            transform = transform.map { $0.followed(by: next) } ?? next
        }
        transform?.quantized = self
        return transform
    }
}
