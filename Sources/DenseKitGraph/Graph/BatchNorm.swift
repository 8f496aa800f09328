/// Inference-mode batch normalisation over the channel axis: y = gamma * (x - mean) / sqrt(var + eps) + beta.
public struct BatchNorm: Sendable {
    public var gamma: Tensor
    public var beta: Tensor
    public var mean: Tensor
    public var variance: Tensor
    public var epsilon: Float
    /// The quantisation of the activation this op reads, when the model is quantised there.
    public var inputQuantization: Quantization? = nil
    /// The quantisation of the activation this op gives (after the ReLU that follows it in the canonical graph).
    public var outputQuantization: Quantization? = nil
    /// The quantisation of the product `x * gamma` before the offset is added, where the model computes the norm as
    /// two int8 operations (TensorFlow Lite's MUL then ADD).
    public var productQuantization: Quantization? = nil

    public init(gamma: Tensor, beta: Tensor, mean: Tensor, variance: Tensor, epsilon: Float) {
        self.gamma = gamma
        self.beta = beta
        self.mean = mean
        self.variance = variance
        self.epsilon = epsilon
    }

    public var channels: Int { gamma.count }

    /// The per-channel affine form (scale, shift) with y = scale * x + shift.
    public func affine() -> (scale: [Float], shift: [Float]) {
        let (gamma, beta, mean, variance) = (gamma.values, beta.values, mean.values, variance.values)
        var scale = [Float](repeating: 0, count: channels)
        var shift = [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            let factor = gamma[c] / (variance[c] + epsilon).squareRoot()
            scale[c] = factor
            shift[c] = beta[c] - mean[c] * factor
        }
        return (scale, shift)
    }

    public var tensors: [Tensor] { [gamma, beta, mean, variance] }

    /// This BN followed by a per-channel multiplication (one value: every channel), as one BN:
    /// gamma and beta scaled. Caffe's Scale layer after its BatchNorm.
    public func scaled(by factors: [Float]) -> BatchNorm {
        func times(_ t: Tensor) -> Tensor {
            let values = t.values.indices.map { t.values[$0] * factors[factors.count == 1 ? 0 : $0] }
            return Tensor(name: t.name, shape: t.shape, storedDType: t.storedDType, values: values)
        }
        return BatchNorm(gamma: times(gamma), beta: times(beta), mean: mean, variance: variance, epsilon: epsilon)
    }

    /// This BN followed by a per-channel addition (one value: every channel), as one BN: beta shifted.
    public func shifted(by offsets: [Float]) -> BatchNorm {
        let values = beta.values.indices.map { beta.values[$0] + offsets[offsets.count == 1 ? 0 : $0] }
        var copy = self
        copy.beta = Tensor(name: beta.name, shape: beta.shape, storedDType: beta.storedDType, values: values)
        return copy
    }

    /// torch's names for `tensors`, in that order (`nn.BatchNorm2d`'s state_dict; DenseKit's ONNX
    /// initializers use them too).
    public static let torchNames = ["weight", "bias", "running_mean", "running_var"]
}
