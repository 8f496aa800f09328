/// Where a conv or BatchNorm sits in a DenseNet (block and layer indices 1-based): what the walks that
/// name them switch on (the `.dnk`'s canonical tensor names, torchvision's state_dict keys).
package enum LayerPart {
    case stem
    /// A deep stem's conv after the first (1-based: timm's `conv1`, `conv2`) and the BatchNorm after it.
    case deepStem(Int)
    /// A dense layer: its first BatchNorm, and the conv that makes its new channels.
    case layer(block: Int, layer: Int)
    /// A dense layer's bottleneck: its 1x1 conv and the BatchNorm after it.
    case bottleneck(block: Int, layer: Int)
    case transition(Int)
    /// The final BatchNorm.
    case head
}

extension DenseNet {
    /// Calls `conv` and `norm` with every conv and BatchNorm in execution order: the stem's, then
    /// each dense layer's BN, bottleneck conv and BN, and conv, each transition's BN and conv, the head's BN.
    package func forEachConvAndNorm(conv: (LayerPart, Conv2D) -> Void, norm: (LayerPart, BatchNorm) -> Void) {
        for step in steps {
            switch step {
            case .stem(let stem):
                conv(.stem, stem.conv)
                if let stemNorm = stem.norm { norm(.stem, stemNorm) }
                for (index, deep) in stem.deep.enumerated() {
                    conv(.deepStem(index + 1), deep.conv)
                    if let deepNorm = deep.norm { norm(.deepStem(index + 1), deepNorm) }
                }
            case .denseLayer(let layer, let block, let index, _):
                norm(.layer(block: block, layer: index), layer.norm)
                if let bottleneck = layer.bottleneck {
                    conv(.bottleneck(block: block, layer: index), bottleneck.conv)
                    if let bottleneckNorm = bottleneck.norm {
                        norm(.bottleneck(block: block, layer: index), bottleneckNorm)
                    }
                }
                conv(.layer(block: block, layer: index), layer.conv)
            case .transition(let transition, let index):
                norm(.transition(index), transition.norm)
                conv(.transition(index), transition.conv)
            case .head(let head):
                norm(.head, head.norm)
            }
        }
    }
}

extension DenseNet {
    /// `transform` applied to every tensor (every conv's, BatchNorm's and dense layer's), the
    /// structure unchanged.
    package func mappingTensors(_ transform: (Tensor) -> Tensor) -> DenseNet {
        func conv(_ conv: Conv2D) -> Conv2D {
            var converted = conv
            converted.weight = transform(conv.weight)
            converted.bias = conv.bias.map(transform)
            return converted
        }
        func norm(_ norm: BatchNorm) -> BatchNorm {
            BatchNorm(
                gamma: transform(norm.gamma), beta: transform(norm.beta), mean: transform(norm.mean),
                variance: transform(norm.variance), epsilon: norm.epsilon)
        }
        return mappingSteps { step in
            switch step {
            case .stem(var stem):
                stem.conv = conv(stem.conv)
                stem.norm = stem.norm.map(norm)
                stem.deep = stem.deep.map { StemConvolution(conv: conv($0.conv), norm: $0.norm.map(norm)) }
                return .stem(stem)
            case .denseLayer(var layer, let block, let index, let endsBlock):
                layer.norm = norm(layer.norm)
                if var bottleneck = layer.bottleneck {
                    bottleneck.conv = conv(bottleneck.conv)
                    bottleneck.norm = bottleneck.norm.map(norm)
                    layer.bottleneck = bottleneck
                }
                layer.conv = conv(layer.conv)
                return .denseLayer(layer, block: block, index: index, endsBlock: endsBlock)
            case .transition(var transition, let index):
                transition.norm = norm(transition.norm)
                transition.conv = conv(transition.conv)
                return .transition(transition, index: index)
            case .head(var head):
                head.norm = norm(head.norm)
                for position in head.dense.indices {
                    head.dense[position].linear.weight = transform(head.dense[position].linear.weight)
                    head.dense[position].linear.bias = head.dense[position].linear.bias.map(transform)
                }
                return .head(head)
            }
        }
    }
}
