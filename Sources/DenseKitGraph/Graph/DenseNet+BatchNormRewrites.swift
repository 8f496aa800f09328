/// The BatchNorm rewrites a target's layout needs. Each is exact for DenseKit's executor, which
/// folds every BN that follows a conv the same way (`Conv2D.folding`) and computes each BN's scale
/// from `variance + epsilon`: a rewritten graph runs bit for bit like the original.
extension DenseNet {
    /// Every BN that directly follows a conv (the stem's, each bottleneck's) folded into it; with
    /// the number folded.
    package func foldingBatchNorms() -> (net: DenseNet, folded: Int) {
        var folded = 0
        let net = mappingSteps { step in
            switch step {
            case .stem(var stem):
                if let norm = stem.norm {
                    stem.conv = stem.conv.folding(norm)
                    stem.norm = nil
                    folded += 1
                }
                stem.deep = stem.deep.map { deep in
                    guard let norm = deep.norm else { return deep }
                    folded += 1
                    return StemConvolution(conv: deep.conv.folding(norm), norm: nil)
                }
                return .stem(stem)
            case .denseLayer(var layer, let block, let index, let endsBlock):
                guard let bottleneck = layer.bottleneck, let norm = bottleneck.norm else { return step }
                layer.bottleneck = Bottleneck(conv: bottleneck.conv.folding(norm), norm: nil)
                folded += 1
                return .denseLayer(layer, block: block, index: index, endsBlock: endsBlock)
            case .transition, .head:
                return step
            }
        }
        return (net, folded)
    }

    /// Every folded BN (a conv with a bias where a BN belongs) restored as a BN after the conv that
    /// adds the bias and is otherwise the identity: gamma 1, mean 0, a variance with
    /// `variance + epsilon == 1` exactly, beta the bias. With the number restored.
    package func unfoldingBatchNorms(epsilon: Float) -> (net: DenseNet, unfolded: Int) {
        func identity(for conv: Conv2D, _ prefix: String) -> (Conv2D, BatchNorm) {
            let channels = conv.outChannels
            var bare = conv
            bare.bias = nil
            let variance = Self.variance(giving: 1, epsilon: epsilon)
            func tensor(_ name: String, _ values: [Float]) -> Tensor {
                Tensor(name: "\(prefix).\(name)", shape: [channels], values: values)
            }
            let norm = BatchNorm(
                gamma: tensor("weight", .init(repeating: 1, count: channels)),
                beta: tensor("bias", conv.bias?.values ?? []),
                mean: tensor("running_mean", .init(repeating: 0, count: channels)),
                variance: tensor("running_var", .init(repeating: variance, count: channels)),
                epsilon: epsilon)
            return (bare, norm)
        }
        var unfolded = 0
        let net = mappingSteps { step in
            switch step {
            case .stem(var stem):
                if stem.normFolded && stem.relu {
                    (stem.conv, stem.norm) = identity(for: stem.conv, "stem.norm")
                    unfolded += 1
                }
                for index in stem.deep.indices where stem.deep[index].normFolded {
                    let (conv, norm) = identity(for: stem.deep[index].conv, "stem.deep\(index + 1).norm")
                    stem.deep[index] = StemConvolution(conv: conv, norm: norm)
                    unfolded += 1
                }
                return .stem(stem)
            case .denseLayer(var layer, let block, let index, let endsBlock):
                guard let bottleneck = layer.bottleneck, bottleneck.normFolded else { return step }
                let (conv, norm) = identity(for: bottleneck.conv, "\(step.layer).norm2")
                layer.bottleneck = Bottleneck(conv: conv, norm: norm)
                unfolded += 1
                return .denseLayer(layer, block: block, index: index, endsBlock: endsBlock)
            case .transition, .head:
                return step
            }
        }
        return (net, unfolded)
    }

    /// Every BN given `epsilon`, its moving variance moved so that `variance + epsilon` is the same
    /// float32 as before (so the BN computes the same scale); with the number changed and the BNs
    /// where no float32 variance does it exactly (the validation then refuses the file).
    package func settingBatchNormEpsilon(_ epsilon: Float) -> (net: DenseNet, changed: Int, inexact: [String]) {
        var changed = 0
        var inexact: [String] = []
        let net = mappingBatchNorms { name, norm in
            guard norm.epsilon != epsilon else { return norm }
            var rewritten = norm
            rewritten.variance.values = norm.variance.values.map { variance in
                let target = variance + norm.epsilon
                let compensated = Self.variance(giving: target, epsilon: epsilon)
                if compensated + epsilon != target, !inexact.contains(name) { inexact.append(name) }
                return compensated
            }
            rewritten.epsilon = epsilon
            changed += 1
            return rewritten
        }
        return (net, changed, inexact)
    }

    /// A float32 variance with `variance + epsilon == target` when one exists (the nearest to `target - epsilon`).
    package static func variance(giving target: Float, epsilon: Float) -> Float {
        var variance = target - epsilon
        // Rounding may land an ulp or two off; the sum is monotone in the variance, so step towards the target.
        for _ in 0..<8 {
            let sum = variance + epsilon
            if sum == target { return variance }
            variance = sum < target ? variance.nextUp : variance.nextDown
        }
        return target - epsilon
    }

    /// `transform` applied to every BatchNorm, with its canonical layer-and-role name.
    package func mappingBatchNorms(_ transform: (String, BatchNorm) -> BatchNorm) -> DenseNet {
        mappingSteps { step in
            let name = step.layer.name
            switch step {
            case .stem(var stem):
                stem.norm = stem.norm.map { transform(name, $0) }
                for index in stem.deep.indices {
                    stem.deep[index].norm = stem.deep[index].norm.map { transform(name, $0) }
                }
                return .stem(stem)
            case .denseLayer(var layer, let block, let index, let endsBlock):
                layer.norm = transform(name, layer.norm)
                if let norm = layer.bottleneck?.norm { layer.bottleneck?.norm = transform(name, norm) }
                return .denseLayer(layer, block: block, index: index, endsBlock: endsBlock)
            case .transition(var transition, let index):
                transition.norm = transform(name, transition.norm)
                return .transition(transition, index: index)
            case .head(var head):
                head.norm = transform(name, head.norm)
                return .head(head)
            }
        }
    }

    /// The canonical names of convs with a bias that is not a folded BN's (torchvision's and
    /// Keras's DenseNets have none).
    package var convsWithOwnBias: [String] {
        var names: [String] = []
        for step in steps {
            switch step {
            case .denseLayer(let layer, _, _, _):
                if layer.conv.bias != nil || (layer.bottleneck?.norm != nil && layer.bottleneck?.conv.bias != nil) {
                    names.append(step.layer.name)
                }
            case .transition(let transition, _):
                if transition.conv.bias != nil { names.append(step.layer.name) }
            case .stem, .head:
                break
            }
        }
        // A folded stem BN keeps its ReLU; a bare (CIFAR) stem conv has neither.
        if (stem.conv.bias != nil && (stem.norm != nil || !stem.relu))
            || stem.deep.contains(where: { $0.conv.bias != nil && $0.norm != nil })
        {
            names.insert("stem", at: 0)
        }
        return names
    }
}
