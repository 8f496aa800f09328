extension DenseNet {
    /// Every conv and linear layer, in execution order, with the canonical name of the layer it belongs to.
    package var weightedOps: [(layer: String, conv: Conv2D?, linear: Linear?)] {
        steps.flatMap { step -> [(layer: String, conv: Conv2D?, linear: Linear?)] in
            let name = step.layer.name
            switch step {
            case .stem(let stem): return stem.convolutions.map { (name, $0.conv, nil) }
            case .denseLayer(let layer, _, _, _):
                return (layer.bottleneck.map { [(name, $0.conv, nil)] } ?? []) + [(name, layer.conv, nil)]
            case .transition(let transition, _): return [(name, transition.conv, nil)]
            case .head(let head): return zip(head.layerNames, head.dense).map { ($0, nil, $1.linear) }
            }
        }
    }

    /// True when any weight holds integer codes or any activation is quantised: the model runs on the
    /// integer executor.
    public var isQuantized: Bool {
        tensors.contains { $0.quantized != nil }
            || steps.contains { step in
                step.norms.contains { $0.inputQuantization != nil || $0.outputQuantization != nil }
            }
            || weightedOps.contains {
                $0.conv?.inputQuantization != nil || $0.conv?.outputQuantization != nil
                    || $0.linear?.inputQuantization != nil || $0.linear?.outputQuantization != nil
            }
    }

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
