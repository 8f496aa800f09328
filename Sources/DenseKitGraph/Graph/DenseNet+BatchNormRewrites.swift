/// The BatchNorm rewrites a target's layout needs. Each is exact for DenseKit's executor, which
/// folds every BN that follows a conv the same way (`Conv2D.folding`) and computes each BN's scale
/// from `variance + epsilon`: a rewritten graph runs bit for bit like the original.
extension DenseNet {
    /// Every BN that directly follows a conv (the stem's, each bottleneck's) folded into it; with
    /// the number folded.
    package func foldingBatchNorms() -> (net: DenseNet, folded: Int) {
        var net = self
        var folded = 0
        if let n = net.stem.norm {
            net.stem.conv = net.stem.conv.folding(n)
            net.stem.norm = nil
            folded += 1
        }
        for b in net.blocks.indices {
            for i in net.blocks[b].layers.indices {
                guard let bottleneck = net.blocks[b].layers[i].bottleneck, let n = bottleneck.norm else { continue }
                net.blocks[b].layers[i].bottleneck = Bottleneck(conv: bottleneck.conv.folding(n), norm: nil)
                folded += 1
            }
        }
        return (net, folded)
    }

    /// Every folded BN (a conv with a bias where a BN belongs) restored as a BN after the conv that
    /// adds the bias and is otherwise the identity: gamma 1, mean 0, a variance with
    /// `variance + epsilon == 1` exactly, beta the bias. With the number restored.
    package func unfoldingBatchNorms(epsilon: Float) -> (net: DenseNet, unfolded: Int) {
        func identity(for conv: Conv2D, _ prefix: String) -> (Conv2D, BatchNorm) {
            let c = conv.outChannels
            var bare = conv
            bare.bias = nil
            let variance = Self.variance(giving: 1, epsilon: epsilon)
            func t(_ name: String, _ values: [Float]) -> Tensor {
                Tensor(name: "\(prefix).\(name)", shape: [c], values: values)
            }
            let norm = BatchNorm(
                gamma: t("weight", .init(repeating: 1, count: c)), beta: t("bias", conv.bias?.values ?? []),
                mean: t("running_mean", .init(repeating: 0, count: c)),
                variance: t("running_var", .init(repeating: variance, count: c)),
                epsilon: epsilon)
            return (bare, norm)
        }
        var net = self
        var unfolded = 0
        if net.stem.normFolded && net.stem.relu {
            (net.stem.conv, net.stem.norm) = identity(for: net.stem.conv, "stem.norm")
            unfolded += 1
        }
        for b in net.blocks.indices {
            for i in net.blocks[b].layers.indices {
                guard let bottleneck = net.blocks[b].layers[i].bottleneck, bottleneck.normFolded else { continue }
                let (conv, norm) = identity(
                    for: bottleneck.conv, "\(CanonicalLayer.denseLayer(block: b + 1, layer: i + 1)).norm2")
                net.blocks[b].layers[i].bottleneck = Bottleneck(conv: conv, norm: norm)
                unfolded += 1
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
            var n = norm
            n.variance.values = norm.variance.values.map { v in
                let target = v + norm.epsilon
                let compensated = Self.variance(giving: target, epsilon: epsilon)
                if compensated + epsilon != target, !inexact.contains(name) { inexact.append(name) }
                return compensated
            }
            n.epsilon = epsilon
            changed += 1
            return n
        }
        return (net, changed, inexact)
    }

    /// A float32 `v` with `v + epsilon == target` when one exists (the nearest to `target - epsilon`).
    package static func variance(giving target: Float, epsilon: Float) -> Float {
        var v = target - epsilon
        // Rounding may land an ulp or two off; the sum is monotone in v, so step towards the target.
        for _ in 0..<8 {
            let sum = v + epsilon
            if sum == target { return v }
            v = sum < target ? v.nextUp : v.nextDown
        }
        return target - epsilon
    }

    /// `transform` applied to every BatchNorm, with its canonical layer-and-role name.
    package func mappingBatchNorms(_ transform: (String, BatchNorm) -> BatchNorm) -> DenseNet {
        var net = self
        if let n = net.stem.norm { net.stem.norm = transform("stem", n) }
        for b in net.blocks.indices {
            for i in net.blocks[b].layers.indices {
                let name = CanonicalLayer.denseLayer(block: b + 1, layer: i + 1).name
                net.blocks[b].layers[i].norm = transform(name, net.blocks[b].layers[i].norm)
                if let n = net.blocks[b].layers[i].bottleneck?.norm {
                    net.blocks[b].layers[i].bottleneck?.norm = transform(name, n)
                }
            }
            if b < net.transitions.count {
                net.transitions[b].norm = transform(CanonicalLayer.transition(b + 1).name, net.transitions[b].norm)
            }
        }
        net.head.norm = transform("head", net.head.norm)
        return net
    }

    /// The canonical names of convs with a bias that is not a folded BN's (torchvision's and
    /// Keras's DenseNets have none).
    package var convsWithOwnBias: [String] {
        var names: [String] = []
        for (b, block) in blocks.enumerated() {
            for (i, layer) in block.layers.enumerated() {
                if layer.conv.bias != nil || (layer.bottleneck?.norm != nil && layer.bottleneck?.conv.bias != nil) {
                    names.append(CanonicalLayer.denseLayer(block: b + 1, layer: i + 1).name)
                }
            }
            if b < transitions.count, transitions[b].conv.bias != nil {
                names.append(CanonicalLayer.transition(b + 1).name)
            }
        }
        // A folded stem BN keeps its ReLU; a bare (CIFAR) stem conv has neither.
        if stem.conv.bias != nil && (stem.norm != nil || !stem.relu) { names.insert("stem", at: 0) }
        return names
    }
}
