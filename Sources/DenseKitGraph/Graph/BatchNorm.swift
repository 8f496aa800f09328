/// Inference-mode batch normalisation over the channel axis: y = gamma * (x - mean) / sqrt(var + eps) + beta.
public struct BatchNorm: Sendable {
    public var gamma: Tensor
    public var beta: Tensor
    public var mean: Tensor
    public var variance: Tensor
    public var epsilon: Float

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

    /// torch's names for `tensors`, in that order (`nn.BatchNorm2d`'s state_dict; DenseKit's ONNX
    /// initializers use them too).
    public static let torchNames = ["weight", "bias", "running_mean", "running_var"]
}
