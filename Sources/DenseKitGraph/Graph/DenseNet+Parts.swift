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
