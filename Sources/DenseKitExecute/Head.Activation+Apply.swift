import DenseKitGraph
import DenseKitKernels
import Foundation

extension Head.Activation {
    /// Applies the activation to one image's values in place (`.unknown` runs as linear).
    public func apply(_ values: UnsafeMutableBufferPointer<Float>) {
        switch self {
        case .linear, .unknown: return
        // NaN stays NaN, as in torch.
        case .relu: for i in values.indices { values[i] = DenseKitKernels.relu(values[i]) }
        case .sigmoid: for i in values.indices { values[i] = 1 / (1 + Foundation.exp(-values[i])) }
        case .tanh: for i in values.indices { values[i] = Foundation.tanh(values[i]) }
        case .softmax: for (i, p) in Reference.softmax(Array(values)).enumerated() { values[i] = p }
        }
    }
}
