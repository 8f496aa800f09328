import Foundation

/// The head: the final BN-ReLU, then a global pool (or none: the output is the feature map, NCHW),
/// then zero or more dense layers, each a linear map with an activation.
///
/// The paper's and keras.applications' head is `.average` pool and one dense layer (softmax in
/// Keras, logits in torchvision); fine-tuned models replace the dense chain (CheXNet: one linear
/// layer to 14 classes with a sigmoid) and feature extractors drop it. Canonical layer names: the
/// model's output is `head`; when there are several dense layers the ones before the last are
/// `head.dense1`, `head.dense2`, ...
public struct Head: Sendable {
    public enum Pool: String, Sendable, Codable { case average, max }

    public enum Activation: String, Sendable, Codable {
        case linear, relu, sigmoid, softmax, tanh
        /// A weights-only file stores no activations: run as linear (the layer's values are the
        /// output), and reported as unknown.
        case unknown
    }

    /// A linear map (weights (out, in)) followed by an activation.
    public struct Dense: Sendable {
        public var linear: Linear
        public var activation: Activation
        public init(_ linear: Linear, _ activation: Activation) {
            self.linear = linear
            self.activation = activation
        }
    }

    public var norm: BatchNorm
    /// nil: no global pool; the head outputs the final BN-ReLU's feature map (and has no dense layers).
    public var pool: Pool?
    public var dense: [Dense]
    /// The output keeps the pooled map's two unit axes, [N, classes, 1, 1], as a file whose classifier is
    /// a 1x1 conv declares it (Caffe's models). The values are the same.
    public var outputKeepsMapAxes = false
    /// The quantisation of the model's output (after the last activation), where the file quantises it: the
    /// output is the dequantised codes.
    public var outputQuantization: Quantization? = nil

    public init(norm: BatchNorm, pool: Pool?, dense: [Dense]) {
        self.norm = norm
        self.pool = pool
        self.dense = dense
    }

    /// The paper's head: global average pool, one linear layer, with or without softmax.
    public init(norm: BatchNorm, classifier: Linear, softmax: Bool) {
        self.init(norm: norm, pool: .average, dense: [Dense(classifier, softmax ? .softmax : .linear)])
    }

    /// The last dense layer, when there is one.
    public var classifier: Linear? { dense.last?.linear }
    /// The output's activation (`.linear` for a head without dense layers).
    public var activation: Activation { dense.last?.activation ?? .linear }
    public var softmax: Bool { activation == .softmax }

    /// The canonical names of the head's layers in execution order; the last is `head`.
    public var layerNames: [String] {
        canonicalLayers.map(\.name)
    }

    package var tensors: [Tensor] {
        norm.tensors + dense.flatMap { [$0.linear.weight] + ($0.linear.bias.map { [$0] } ?? []) }
    }

    /// "global avg pool, linear 1024 -> 14, sigmoid" or "no classifier: 1024 features (global avg pool)".
    public var summary: String {
        let pooled = pool.map { "global \($0 == .average ? "avg" : "max") pool" }
        guard !dense.isEmpty else {
            return "no classifier: \(norm.channels) features"
                + (pooled.map { " (\($0))" } ?? " per position (the feature map, no pool)")
        }
        var parts = pooled.map { [$0] } ?? []
        for (i, d) in dense.enumerated() {
            parts.append("linear \(d.linear.inFeatures) -> \(d.linear.outFeatures)")
            switch d.activation {
            case .linear: if i == dense.count - 1 { parts.append("logits") }
            case .unknown: parts.append("activation unknown (the file stores none)")
            default: parts.append(d.activation.rawValue)
            }
        }
        return parts.joined(separator: ", ")
    }
}
