extension LayerStep {
    /// The step's convs and linear layers, in order, with the canonical name of the layer each belongs to.
    package var weightedOps: [(layer: String, conv: Conv2D?, linear: Linear?)] {
        let name = layer.name
        switch self {
        case .stem(let stem): return stem.convolutions.map { (name, $0.conv, nil) }
        case .denseLayer(let layer, _, _, _):
            return (layer.bottleneck.map { [(name, $0.conv, nil)] } ?? []) + [(name, layer.conv, nil)]
        case .transition(let transition, _): return [(name, transition.conv, nil)]
        case .head(let head): return zip(head.layerNames, head.dense).map { ($0, nil, $1.linear) }
        }
    }

    /// The step's pools (the stem's and a transition's).
    package var pools: [Pool2D] {
        switch self {
        case .stem(let stem): return stem.pool.map { [$0] } ?? []
        case .transition(let transition, _): return [transition.pool]
        case .denseLayer, .head: return []
        }
    }

    /// True when any of the step's weights holds integer codes or any of its activations is quantised.
    public var isQuantized: Bool {
        tensors.contains { $0.quantized != nil }
            || norms.contains { $0.inputQuantization != nil || $0.outputQuantization != nil }
            || pools.contains { $0.inputQuantization != nil || $0.outputQuantization != nil }
            || weightedOps.contains {
                $0.conv?.inputQuantization != nil || $0.conv?.outputQuantization != nil
                    || $0.linear?.inputQuantization != nil || $0.linear?.outputQuantization != nil
            }
    }
}

extension DenseNet {
    /// Every conv and linear layer, in execution order, with the canonical name of the layer it belongs to.
    package var weightedOps: [(layer: String, conv: Conv2D?, linear: Linear?)] { steps.flatMap(\.weightedOps) }

    /// True when any weight holds integer codes or any activation is quantised: the model runs on the
    /// integer executor.
    public var isQuantized: Bool { steps.contains(where: \.isQuantized) }

    /// One line on how the model is quantised: activation and weight types, per tensor or per channel, and how
    /// many convs and linear layers run on integers; nil for a float model.
    public var quantizationSummary: String? {
        guard isQuantized else { return nil }
        let ops = weightedOps
        let weights = ops.compactMap { $0.conv?.weight.quantized ?? $0.linear?.weight.quantized }
        let activations = Set(
            ops.compactMap { ($0.conv?.outputQuantization ?? $0.linear?.outputQuantization)?.storage.rawValue })
        let weightTypes = Set(weights.map(\.quantization.storage.rawValue)).sorted().joined(separator: "/")
        let perChannel = weights.contains { !$0.quantization.isPerTensor }
        let integer = ops.filter {
            ($0.conv?.weight.quantized != nil && $0.conv?.outputQuantization != nil)
                || $0.linear?.weight.quantized != nil
        }.count
        return "activations \(activations.sorted().joined(separator: "/")), weights \(weightTypes) "
            + "\(perChannel ? "per channel" : "per tensor"); \(integer) of \(ops.count) convs and linear layers on "
            + "integers"
    }
}
