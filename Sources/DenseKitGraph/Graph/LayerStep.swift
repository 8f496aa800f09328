/// One canonical layer of a DenseNet with the part of the graph that computes it: a step of the one walk
/// (`DenseNet.steps`) that the executor's plan, the writers' key names, the diff, the verifier and the `.dnk`
/// layout all take, so none of them counts blocks and layers itself.
public enum LayerStep: Sendable {
    case stem(Stem)
    /// A dense layer, `block` and `index` 1-based; `endsBlock` on its block's last layer (where the
    /// block's concatenation is complete).
    case denseLayer(DenseLayer, block: Int, index: Int, endsBlock: Bool)
    /// The transition after block `index` (1-based).
    case transition(Transition, index: Int)
    case head(Head)

    /// The canonical layer this step computes (`head` for the whole head, whose dense layers before the
    /// last are `head.dense<i>`: `Head.canonicalLayers`).
    public var layer: CanonicalLayer {
        switch self {
        case .stem: return .stem
        case .denseLayer(_, let block, let index, _): return .denseLayer(block: block, layer: index)
        case .transition(_, let index): return .transition(index)
        case .head: return .head
        }
    }

    /// The step's weight tensors, in the order the layer uses them.
    package var tensors: [Tensor] {
        switch self {
        case .stem(let stem): return stem.tensors
        case .denseLayer(let layer, _, _, _): return layer.tensors
        case .transition(let transition, _): return transition.tensors
        case .head(let head): return head.tensors
        }
    }

    /// The step's BatchNorms, in the order the layer applies them.
    package var norms: [BatchNorm] {
        switch self {
        case .stem(let stem): return stem.convolutions.compactMap(\.norm)
        case .denseLayer(let layer, _, _, _): return [layer.norm] + (layer.bottleneck?.norm.map { [$0] } ?? [])
        case .transition(let transition, _): return [transition.norm]
        case .head(let head): return [head.norm]
        }
    }
}

extension DenseNet {
    /// The one walk over the network in execution order: the stem, each block's dense layers with the
    /// transition after it, the head.
    public var steps: [LayerStep] {
        var steps: [LayerStep] = [.stem(stem)]
        for (blockIndex, block) in blocks.enumerated() {
            for (layerIndex, layer) in block.layers.enumerated() {
                steps.append(
                    .denseLayer(
                        layer, block: blockIndex + 1, index: layerIndex + 1,
                        endsBlock: layerIndex == block.layers.count - 1))
            }
            if blockIndex < transitions.count {
                steps.append(.transition(transitions[blockIndex], index: blockIndex + 1))
            }
        }
        return steps + [.head(head)]
    }

    /// Every canonical layer in execution order: the names the executor, the diff and the reports use.
    public var canonicalLayers: [CanonicalLayer] {
        steps.flatMap { step -> [CanonicalLayer] in
            if case .head(let head) = step { return head.canonicalLayers }
            return [step.layer]
        }
    }

    /// Every weight tensor the canonical graph holds, in execution order.
    public var tensors: [Tensor] { steps.flatMap(\.tensors) }

    /// Canonical layer names in execution order (`canonicalLayers`).
    public var layerNames: [String] { canonicalLayers.map(\.name) }
}

extension DenseNet {
    /// The network with each step replaced by what `transform` makes of it, in place: the one walk for
    /// the rewrites (BatchNorm folding, tensor conversion). A transform keeps the step's kind and position.
    package func mappingSteps(_ transform: (LayerStep) throws -> LayerStep) rethrows -> DenseNet {
        var net = self
        for step in steps {
            switch (step, try transform(step)) {
            case (.stem, .stem(let stem)): net.stem = stem
            case (.denseLayer(_, let block, let index, _), .denseLayer(let layer, _, _, _)):
                net.blocks[block - 1].layers[index - 1] = layer
            case (.transition(_, let index), .transition(let transition, _)): net.transitions[index - 1] = transition
            case (.head, .head(let head)): net.head = head
            default: preconditionFailure("a step transform changed the kind of \(step.layer)")
            }
        }
        return net
    }
}
