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

    /// Every activation quantisation the step's BatchNorms, convs, linear layers and pools carry, each with the
    /// part it is on (`norm input`, `bottleneck.norm output`, `conv output`, `pool output`, ...).
    package var activationQuantizations: [(part: String, quantization: Quantization)] {
        var sites: [(String, Quantization?)] = []
        for (index, norm) in norms.enumerated() {
            let isStem = if case .stem = self { true } else { false }
            let part = index == 0 ? "norm" : isStem ? "deep\(index).norm" : "bottleneck.norm"
            sites += [
                ("\(part) input", norm.inputQuantization), ("\(part) product", norm.productQuantization),
                ("\(part) output", norm.outputQuantization),
            ]
        }
        for op in weightedOps {
            if let conv = op.conv {
                sites += [("conv input", conv.inputQuantization), ("conv output", conv.outputQuantization)]
            }
            if let linear = op.linear {
                sites += [
                    ("linear input", linear.inputQuantization), ("linear product", linear.productQuantization),
                    ("linear output", linear.outputQuantization),
                ]
            }
        }
        if case .head(let head) = self, let q = head.outputQuantization { sites.append(("output", q)) }
        for pool in pools {
            sites += [("pool input", pool.inputQuantization), ("pool output", pool.outputQuantization)]
        }
        return sites.compactMap { part, q in q.map { (part, $0) } }
    }

    /// True when any of the step's weights holds integer codes or any of its activations is quantised.
    public var isQuantized: Bool { tensors.contains { $0.quantized != nil } || !activationQuantizations.isEmpty }
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
        // TensorFlow Lite's hybrid kernels compute on integers with float activations too.
        let integer = ops.filter {
            ($0.conv?.weight.quantized != nil && ($0.conv?.outputQuantization != nil || integerArithmetic == .tflite))
                || $0.linear?.weight.quantized != nil
        }.count
        let activationTypes = activations.isEmpty ? "float" : activations.sorted().joined(separator: "/")
        return "activations \(activationTypes), weights \(weightTypes) "
            + "\(perChannel ? "per channel" : "per tensor"); \(integer) of \(ops.count) convs and linear layers on "
            + "integers"
    }
}

extension DenseNet {
    /// The model with every quantisation removed: each weight its dequantised float values, every activation float
    /// (`convert --dequantize`). Rounding to codes no longer happens, so its outputs differ from the int8 model's.
    public func dequantized() -> DenseNet {
        var net = mappingSteps { step in
            switch step {
            case .stem(var stem):
                stem.conv = stem.conv.dequantized()
                stem.norm = stem.norm?.dequantized()
                stem.deep = stem.deep.map { StemConvolution(conv: $0.conv.dequantized(), norm: $0.norm?.dequantized()) }
                stem.pool = stem.pool?.dequantized()
                return .stem(stem)
            case .denseLayer(var layer, let block, let index, let ends):
                layer.norm = layer.norm.dequantized()
                layer.bottleneck = layer.bottleneck.map {
                    Bottleneck(conv: $0.conv.dequantized(), norm: $0.norm?.dequantized())
                }
                layer.conv = layer.conv.dequantized()
                return .denseLayer(layer, block: block, index: index, endsBlock: ends)
            case .transition(var transition, let index):
                transition.norm = transition.norm.dequantized()
                transition.conv = transition.conv.dequantized()
                transition.pool = transition.pool.dequantized()
                return .transition(transition, index: index)
            case .head(var head):
                head.norm = head.norm.dequantized()
                head.dense = head.dense.map { Head.Dense($0.linear.dequantized(), $0.activation) }
                head.outputQuantization = nil
                return .head(head)
            }
        }
        net.inputTransform?.quantized = nil
        return net
    }
}

extension Tensor {
    fileprivate func dequantized() -> Tensor {
        var copy = self
        copy.quantized = nil
        return copy
    }
}

extension Conv2D {
    fileprivate func dequantized() -> Conv2D {
        Conv2D(weight: weight.dequantized(), bias: bias?.dequantized(), stride: stride, pads: pads)
    }
}

extension BatchNorm {
    fileprivate func dequantized() -> BatchNorm {
        BatchNorm(
            gamma: gamma.dequantized(), beta: beta.dequantized(), mean: mean.dequantized(),
            variance: variance.dequantized(), epsilon: epsilon)
    }
}

extension Pool2D {
    fileprivate func dequantized() -> Pool2D {
        Pool2D(kind: kind, kernel: kernel, stride: stride, pads: pads, countIncludePad: countIncludePad)
    }
}

extension Linear {
    fileprivate func dequantized() -> Linear { Linear(weight: weight.dequantized(), bias: bias?.dequantized()) }
}
