import DenseKitGraph
import DenseKitKernels
import Foundation

extension Head.Activation {
    /// Applies the activation to one image's values in place (`.unknown` runs as linear).
    public func apply(_ y: UnsafeMutableBufferPointer<Float>) {
        switch self {
        case .linear, .unknown: return
        case .relu: for i in y.indices { y[i] = DenseKitKernels.relu(y[i]) }  // NaN stays NaN, as in torch
        case .sigmoid: for i in y.indices { y[i] = 1 / (1 + Foundation.exp(-y[i])) }
        case .tanh: for i in y.indices { y[i] = Foundation.tanh(y[i]) }
        case .softmax: for (i, p) in Reference.softmax(Array(y)).enumerated() { y[i] = p }
        }
    }
}
