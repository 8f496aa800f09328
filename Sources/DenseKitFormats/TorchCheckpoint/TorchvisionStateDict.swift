import DenseKitGraph

/// The canonical graph under torchvision's state_dict names (`torchvision/models/densenet.py`), the
/// names `StateDictImporter` reads: `features.conv0`, `features.norm0`, `features.denseblock<b>.
/// denselayer<i>.norm1/conv1/norm2/conv2`, `features.transition<t>.norm/conv`, `features.norm5`,
/// then `classifier` (one Linear) or `classifier.<i>` (a Sequential of Linears and activations).
/// Every BatchNorm has torch's `num_batches_tracked` (int64, 0) beside its four tensors.
package enum TorchvisionStateDict {
    package enum Value {
        case float(Tensor)
        /// `num_batches_tracked`: an int64 scalar.
        case batchesTracked
    }

    /// For a graph whose BatchNorms are all unfolded (see `DenseNet.unfoldingBatchNorms`).
    package static func entries(_ net: DenseNet) -> [(key: String, value: Value)] {
        var out: [(String, Value)] = []
        func conv(_ key: String, _ convolution: Conv2D) {
            out.append((key + ".weight", .float(convolution.weight)))
            if let bias = convolution.bias { out.append((key + ".bias", .float(bias))) }
        }
        func norm(_ key: String, _ batchNorm: BatchNorm) {
            for (name, tensor) in zip(BatchNorm.torchNames, batchNorm.tensors) {
                out.append(("\(key).\(name)", .float(tensor)))
            }
            out.append((key + ".num_batches_tracked", .batchesTracked))
        }
        func layer(_ block: Int, _ index: Int) -> String { "features.denseblock\(block).denselayer\(index)" }
        net.forEachConvAndNorm(
            conv: { part, convolution in
                switch part {
                case .stem: conv("features.conv0", convolution)
                // timm's deep stem: `features.conv1`, `features.conv2`.
                case .deepStem(let index): conv("features.conv\(index)", convolution)
                case .bottleneck(let block, let index): conv(layer(block, index) + ".conv1", convolution)
                // conv2 after a bottleneck; a layer without one (a plain DenseNet) has only conv1.
                case .layer(let block, let index):
                    conv(
                        layer(block, index)
                            + (net.blocks[block - 1].layers[index - 1].bottleneck == nil ? ".conv1" : ".conv2"),
                        convolution)
                case .transition(let transition): conv("features.transition\(transition).conv", convolution)
                case .head: break
                }
            },
            norm: { part, batchNorm in
                switch part {
                case .stem: norm("features.norm0", batchNorm)
                case .deepStem(let index): norm("features.norm\(index)", batchNorm)
                case .layer(let block, let index): norm(layer(block, index) + ".norm1", batchNorm)
                case .bottleneck(let block, let index): norm(layer(block, index) + ".norm2", batchNorm)
                case .transition(let transition): norm("features.transition\(transition).norm", batchNorm)
                case .head: norm("features.norm5", batchNorm)
                }
            })
        for (prefix, dense) in zip(classifierPrefixes(net.head), net.head.dense) {
            out.append((prefix + ".weight", .float(dense.linear.weight)))
            if let block = dense.linear.bias { out.append((prefix + ".bias", .float(block))) }
        }
        return out
    }

    /// `classifier` for one dense layer; for several, their indices in the Sequential that holds
    /// each Linear followed by its activation module (`classifier.0`, `classifier.2`, ...).
    package static func classifierPrefixes(_ head: Head) -> [String] {
        guard head.dense.count > 1 else { return head.dense.map { _ in "classifier" } }
        var index = 0
        return head.dense.map { d in
            defer { index += d.activation == .linear || d.activation == .unknown ? 1 : 2 }
            return "classifier.\(index)"
        }
    }

    /// The torch module the head's dense layers make: `nn.Linear(1024, 14)` or
    /// `nn.Sequential(nn.Linear(1024, 12), nn.ReLU(), nn.Linear(12, 3), nn.Tanh())`.
    package static func classifierModule(_ head: Head) -> String {
        func linear(_ layer: Linear) -> String {
            "nn.Linear(\(layer.inFeatures), \(layer.outFeatures)\(layer.bias == nil ? ", bias=False" : ""))"
        }
        guard head.dense.count > 1 else { return head.dense.first.map { linear($0.linear) } ?? "nn.Identity()" }
        let modules = head.dense.flatMap { d -> [String] in
            let activation: String? = [
                "relu": "nn.ReLU()", "sigmoid": "nn.Sigmoid()", "softmax": "nn.Softmax(dim=1)", "tanh": "nn.Tanh()",
            ][d.activation.rawValue]
            return [linear(d.linear)] + (activation.map { [$0] } ?? [])
        }
        return "nn.Sequential(\(modules.joined(separator: ", ")))"
    }

    /// The timm call that builds a deep-stem model (whose keys are timm's): `timm.create_model(
    /// 'densenetblur121d')` or timm's `DenseNet` class with the deep stem; nil for another stem, or a deep
    /// one timm does not build (its widths are timm's growth, growth, 2 x growth).
    package static func timmConstructor(_ net: DenseNet) -> String? {
        let stem = net.stem
        guard stem.deep.count == 2, let growth = net.blocks.first?.layers.first?.growth,
            stem.convolutions.map(\.conv.outChannels) == [growth, growth, 2 * growth],
            stem.convolutions.allSatisfy({ $0.conv.kernel == 3 && $0.norm != nil }), stem.relu,
            let width = net.blocks.first?.layers.first?.bottleneck?.conv.outChannels, width % growth == 0
        else { return nil }
        let classes = net.head.dense.count == 1 ? net.head.dense[0].linear.outFeatures : 1000
        let options =
            (classes == 1000 ? "" : ", num_classes=\(classes)")
            + (stem.conv.inChannels == 3 ? "" : ", in_chans=\(stem.conv.inChannels)")
        let config = "(\(net.blocks.map { String($0.layers.count) }.joined(separator: ", ")))"
        if stem.blur != nil, growth == 32, config == "(6, 12, 24, 16)", width == 128 {
            return "timm.create_model('densenetblur121d'\(options))"
        }
        return """
            timm.models.densenet.DenseNet(growth_rate=\(growth), block_config=\(config), bn_size=\(width / growth), \
            stem_type='deep'\(stem.blur == nil ? "" : ", aa_layer=timm.layers.BlurPool2d")\(options))
            """
    }

    /// The `torchvision.models` call that builds this model's backbone, or why none does.
    package static func constructor(_ net: DenseNet) -> (call: String?, reason: String?) {
        let stem = net.stem
        guard stem.conv.kernel == 7, stem.norm != nil, stem.pool?.kind == .max else {
            return (
                nil,
                """
                its stem is a \(stem.conv.kernel)x\(stem.conv.kernel) \
                conv\(stem.pool == nil ? " without a max pool" : ""), not torchvision's 7x7 conv, BN, ReLU and max \
                pool
                """
            )
        }
        let layers = net.blocks.flatMap(\.layers)
        guard let growth = layers.first?.growth, layers.allSatisfy({ $0.growth == growth }) else {
            return (nil, "its growth rate varies")
        }
        guard layers.allSatisfy({ $0.bottleneck != nil }) else { return (nil, "its dense layers have no bottleneck") }
        let widths = Set(layers.compactMap { $0.bottleneck?.conv.outChannels })
        guard widths.count == 1, let width = widths.first, width % growth == 0 else {
            return (nil, "its bottleneck widths are not one multiple of the growth rate")
        }
        var channels = stem.conv.outChannels
        for step in net.steps {
            switch step {
            case .denseLayer: channels += growth
            case .transition(let transition, let index):
                guard transition.conv.outChannels == channels / 2 else {
                    return (
                        nil,
                        """
                        \(CanonicalLayer.transition(index)) does not halve the channels (torchvision's \
                        compression is 0.5)
                        """
                    )
                }
                channels /= 2
            case .stem, .head: break
            }
        }
        // num_classes sizes torchvision's own classifier, which a head of another shape replaces.
        let classes = net.head.dense.count == 1 ? net.head.dense[0].linear.outFeatures : 1000
        let config = "(\(net.blocks.map { String($0.layers.count) }.joined(separator: ", ")))"
        let named: [String: String] = [
            "32 (6, 12, 24, 16) 64": "densenet121", "32 (6, 12, 32, 32) 64": "densenet169",
            "32 (6, 12, 48, 32) 64": "densenet201", "48 (6, 12, 36, 24) 96": "densenet161",
        ]
        if width == 4 * growth, let name = named["\(growth) \(config) \(stem.conv.outChannels)"] {
            return ("torchvision.models.\(name)(\(classes == 1000 ? "" : "num_classes=\(classes)"))", nil)
        }
        return (
            """
            torchvision.models.DenseNet(growth_rate=\(growth), block_config=\(config), \
            num_init_features=\(stem.conv.outChannels), \
            bn_size=\(width / growth)\(classes == 1000 ? "" : ", num_classes=\(classes)"))
            """,
            nil
        )
    }
}
