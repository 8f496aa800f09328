/// A 2-D convolution with OIHW weights and an optional per-output-channel bias.
public struct Conv2D: Sendable {
    /// Weights, layout OIHW: [outChannels, inChannels, kernelH, kernelW].
    public var weight: Tensor
    /// Bias [outChannels]; present when the exporter folded a BatchNorm into this conv.
    public var bias: Tensor?
    public var stride: Int
    /// Zero padding: top, left, bottom, right.
    public var pads: [Int]
    /// The quantisation of the activation this op reads, when the model is quantised there.
    public var inputQuantization: Quantization? = nil
    /// The quantisation of the activation this op gives (after the ReLU that follows it in the canonical graph).
    public var outputQuantization: Quantization? = nil

    public init(weight: Tensor, bias: Tensor? = nil, stride: Int = 1, pads: [Int] = [0, 0, 0, 0]) {
        self.weight = weight
        self.bias = bias
        self.stride = stride
        self.pads = pads
    }

    public var outChannels: Int { weight.shape[0] }
    public var inChannels: Int { weight.shape[1] }
    public var kernel: Int { weight.shape[2] }

    /// Output height and width for an input of the given size (0 where the window does not fit).
    /// Only for a validated conv: stride >= 1, four pads.
    public func outputSize(_ height: Int, _ width: Int) -> (Int, Int) {
        (
            windows(height + pads[0] + pads[2], kernel, stride),
            windows(width + pads[1] + pads[3], weight.shape[3], stride)
        )
    }
}

/// How many windows of `kernel` at `stride` fit in `extent` (floor mode; 0 when none does).
package func windows(_ extent: Int, _ kernel: Int, _ stride: Int) -> Int {
    extent < kernel ? 0 : (extent - kernel) / stride + 1
}
