/// Where a conv or BatchNorm sits in a DenseNet (block and layer indices 1-based): what the walks that
/// name them switch on (the `.dnk`'s canonical tensor names, torchvision's state_dict keys).
package enum LayerPart {
    case stem
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
        conv(.stem, stem.conv)
        if let n = stem.norm { norm(.stem, n) }
        for (b, block) in blocks.enumerated() {
            for (i, layer) in block.layers.enumerated() {
                norm(.layer(block: b + 1, layer: i + 1), layer.norm)
                if let bn = layer.bottleneck {
                    conv(.bottleneck(block: b + 1, layer: i + 1), bn.conv)
                    if let n = bn.norm { norm(.bottleneck(block: b + 1, layer: i + 1), n) }
                }
                conv(.layer(block: b + 1, layer: i + 1), layer.conv)
            }
            if b < transitions.count {
                norm(.transition(b + 1), transitions[b].norm)
                conv(.transition(b + 1), transitions[b].conv)
            }
        }
        norm(.head, head.norm)
    }
}

extension DenseNet {
    /// `transform` applied to every tensor (every conv's, BatchNorm's and dense layer's), the
    /// structure unchanged.
    package func mappingTensors(_ transform: (Tensor) -> Tensor) -> DenseNet {
        func conv(_ c: Conv2D) -> Conv2D {
            var c = c
            c.weight = transform(c.weight)
            c.bias = c.bias.map(transform)
            return c
        }
        func norm(_ n: BatchNorm) -> BatchNorm {
            BatchNorm(
                gamma: transform(n.gamma), beta: transform(n.beta), mean: transform(n.mean),
                variance: transform(n.variance), epsilon: n.epsilon)
        }
        var net = self
        net.stem.conv = conv(stem.conv)
        net.stem.norm = stem.norm.map(norm)
        for b in net.blocks.indices {
            for i in net.blocks[b].layers.indices {
                var layer = net.blocks[b].layers[i]
                layer.norm = norm(layer.norm)
                if var bottleneck = layer.bottleneck {
                    bottleneck.conv = conv(bottleneck.conv)
                    bottleneck.norm = bottleneck.norm.map(norm)
                    layer.bottleneck = bottleneck
                }
                layer.conv = conv(layer.conv)
                net.blocks[b].layers[i] = layer
            }
        }
        for t in net.transitions.indices {
            net.transitions[t].norm = norm(net.transitions[t].norm)
            net.transitions[t].conv = conv(net.transitions[t].conv)
        }
        net.head.norm = norm(head.norm)
        for d in net.head.dense.indices {
            net.head.dense[d].linear.weight = transform(net.head.dense[d].linear.weight)
            net.head.dense[d].linear.bias = net.head.dense[d].linear.bias.map(transform)
        }
        return net
    }
}
