/// Parameter counts in the two conventions the verifier reports.
public struct ParameterCount: Sendable, Equatable {
    /// torch `parameters()`: conv and FC weights, FC bias, BN gamma and beta (== Keras trainable).
    public var trainable = 0
    /// Keras `count_params()`: the trainable count plus BN moving mean and variance.
    public var withBatchNormStatistics = 0

    public init() {}

    package mutating func addConv(_ count: Int) {
        trainable += count
        withBatchNormStatistics += count
    }

    package mutating func addBatchNorm(_ channels: Int) {
        trainable += 2 * channels
        withBatchNormStatistics += 4 * channels
    }
}

extension DenseNet {
    /// The paper-convention count derived from the recognised structure: a BatchNorm the exporter
    /// folded into a conv still counts as a BatchNorm, and the bias the fold created does not count.
    public var parameterCount: ParameterCount {
        var count = ParameterCount()
        for step in steps {
            switch step {
            case .stem(let stem):
                for convolution in stem.convolutions {
                    count.addConv(convolution.conv.weight.elements)
                    if let norm = convolution.norm {
                        count.addBatchNorm(norm.channels)
                    } else if convolution.normFolded {
                        count.addBatchNorm(convolution.conv.outChannels)
                    }
                }
            case .denseLayer(let layer, _, _, _):
                count.addBatchNorm(layer.norm.channels)
                if let bottleneck = layer.bottleneck {
                    count.addConv(bottleneck.conv.weight.elements)
                    count.addBatchNorm(bottleneck.conv.outChannels)
                }
                count.addConv(layer.conv.weight.elements)
            case .transition(let transition, _):
                count.addBatchNorm(transition.norm.channels)
                count.addConv(transition.conv.weight.elements)
            case .head(let head):
                count.addBatchNorm(head.norm.channels)
            }
        }
        // Each dense layer's weights and bias; the classifier's bias counts even where an exporter
        // dropped an all-zero one.
        for (i, d) in head.dense.enumerated() {
            let bias = d.linear.bias != nil || i == head.dense.count - 1 ? d.linear.outFeatures : 0
            count.addConv(d.linear.weight.elements + bias)
        }
        return count
    }
}

extension Tensor {
    /// The elements the shape describes (a structure-only tensor of the tests holds no values).
    fileprivate var elements: Int { shapeProduct ?? 0 }
}
