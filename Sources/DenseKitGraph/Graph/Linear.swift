/// A fully connected layer with weights (out, in) and a bias (out).
public struct Linear: Sendable {
    /// Weights, layout (out, in) as torch stores them.
    public var weight: Tensor
    public var bias: Tensor?
    /// The quantisation of the activation this op reads, when the model is quantised there.
    public var inputQuantization: Quantization? = nil
    /// The quantisation of the activation this op gives (after the ReLU that follows it in the canonical graph).
    public var outputQuantization: Quantization? = nil
    /// The quantisation of the product `x W` before the bias is added, where the model adds the bias as an int8
    /// operation of its own (onnxruntime's QDQ or QLinearAdd after a MatMul); the bias is then float values.
    public var productQuantization: Quantization? = nil

    public init(weight: Tensor, bias: Tensor?) {
        self.weight = weight
        self.bias = bias
    }

    public var outFeatures: Int { weight.shape[0] }
    public var inFeatures: Int { weight.shape[1] }
}
