import DenseKitGraph

/// The layers of keras.applications' DenseNet (keras/src/applications/densenet.py) in the order the
/// model lists them, with their names and weights in Keras's layout (HWIO kernels, (in, out) Dense
/// kernels): what `load_weights` matches a weights file against. Any block sizes and growth rate:
/// the names and order are those the module's `conv_block` / `transition_block` give.
package struct KerasLayer {
    /// The layer's name (Keras 3 spelling: `conv1_conv`).
    package var name: String
    /// tf.keras 2's name where it differs (`conv1/conv`).
    package var keras2Name: String
    /// The Keras class (`Conv2D`, ...).
    package var className: String
    /// (`kernel`, tensor), ... in the order Keras lists the layer's weights.
    package var weights: [(name: String, tensor: Tensor)] = []

    package init(_ name: String, _ className: String, keras2Name: String? = nil, weights: [(String, Tensor)] = []) {
        self.name = name
        self.keras2Name = keras2Name ?? name
        self.className = className
        self.weights = weights.map { (name: $0.0, tensor: $0.1) }
    }

    /// Keras 3's name for the class in a `.weights.h5` path, by its `to_snake_case`: an underscore
    /// before each capital that starts a word (`BatchNormalization` -> `batch_normalization`,
    /// `ZeroPadding2D` -> `zero_padding2d`).
    package var snakeClassName: String {
        let chars = Array(className)
        var out = ""
        for (i, c) in chars.enumerated() {
            let startsWord = i + 1 < chars.count && chars[i + 1].isLowercase
            if c.isUppercase && i > 0 && (startsWord || chars[i - 1].isLowercase) { out += "_" }
            out += c.lowercased()
        }
        return out
    }
}

package enum KerasLayout {
    package static let epsilon: Float = 1.001e-5

    /// The layers of `net`, which `FixedLayoutPreparation` has given Keras's BatchNorms and epsilon,
    /// and whose structure `unsupported` accepts.
    package static func layers(_ net: DenseNet) -> [KerasLayer] {
        func conv(_ name: String, _ convolution: Conv2D, keras2: String? = nil) -> KerasLayer {
            KerasLayer(
                name, "Conv2D", keras2Name: keras2, weights: [("kernel", convolution.weight.permuted(.oihw, to: .hwio))]
            )
        }
        func norm(_ name: String, _ batchNorm: BatchNorm, keras2: String? = nil) -> KerasLayer {
            KerasLayer(
                name, "BatchNormalization", keras2Name: keras2,
                weights: [
                    ("gamma", batchNorm.gamma), ("beta", batchNorm.beta), ("moving_mean", batchNorm.mean),
                    ("moving_variance", batchNorm.variance),
                ])
        }
        var out: [KerasLayer] = []
        for step in net.steps {
            switch step {
            case .stem(let stem):
                out += [
                    KerasLayer("input_layer", "InputLayer", keras2Name: "input_1"),
                    KerasLayer("zero_padding2d", "ZeroPadding2D"),
                    conv("conv1_conv", stem.conv, keras2: "conv1/conv"),
                ]
                if let stemNorm = stem.norm { out.append(norm("conv1_bn", stemNorm, keras2: "conv1/bn")) }
                out += [
                    KerasLayer("conv1_relu", "Activation", keras2Name: "conv1/relu"),
                    KerasLayer("zero_padding2d_1", "ZeroPadding2D"),
                    KerasLayer("pool1", "MaxPooling2D"),
                ]
            case .denseLayer(let layer, let block, let index, _):
                let prefix = "conv\(block + 1)_block\(index)"
                out.append(norm(prefix + "_0_bn", layer.norm))
                out.append(KerasLayer(prefix + "_0_relu", "Activation"))
                if let bottleneck = layer.bottleneck {
                    out.append(conv(prefix + "_1_conv", bottleneck.conv))
                    if let bottleneckNorm = bottleneck.norm { out.append(norm(prefix + "_1_bn", bottleneckNorm)) }
                    out.append(KerasLayer(prefix + "_1_relu", "Activation"))
                }
                out += [conv(prefix + "_2_conv", layer.conv), KerasLayer(prefix + "_concat", "Concatenate")]
            case .transition(let transition, let index):
                let prefix = "pool\(index + 1)"
                out += [
                    norm(prefix + "_bn", transition.norm), KerasLayer(prefix + "_relu", "Activation"),
                    conv(prefix + "_conv", transition.conv), KerasLayer(prefix + "_pool", "AveragePooling2D"),
                ]
            case .head(let head):
                out += headLayers(head, norm: norm("bn", head.norm))
            }
        }
        return out
    }

    /// The head's layers: its BN and ReLU, the global pool, and the dense layers under Keras's names.
    private static func headLayers(_ head: Head, norm: KerasLayer) -> [KerasLayer] {
        var out = [norm, KerasLayer("relu", "Activation")]
        switch head.pool {
        case .average: out.append(KerasLayer("avg_pool", "GlobalAveragePooling2D"))
        case .max: out.append(KerasLayer("max_pool", "GlobalMaxPooling2D"))
        case nil: break
        }
        let names =
            head.dense.count == 1
            ? ["predictions"] : head.dense.indices.map { $0 == 0 ? "dense" : "dense_\($0)" }
        for (name, dense) in zip(names, head.dense) {
            out.append(
                KerasLayer(
                    name, "Dense",
                    weights: [("kernel", dense.linear.weight.transposed())]
                        + (dense.linear.bias.map { [("bias", $0)] } ?? [])))
        }
        return out
    }

    /// Why keras.applications.densenet's building blocks cannot make `net`, or nil.
    package static func unsupported(_ net: DenseNet) -> String? {
        let stem = net.stem
        let kerasStem = "keras.applications' DenseNet has a 7x7/2 conv, BN, ReLU and a 3x3/2 max pool"
        if !stem.deep.isEmpty || stem.blur != nil {
            return "stem: timm's deep stem (\(stem.summary)); \(kerasStem)"
        }
        guard stem.conv.kernel == 7, stem.conv.stride == 2, stem.relu, stem.pool?.kind == .max else {
            return
                """
                its stem is a \(stem.conv.kernel)x\(stem.conv.kernel) \
                conv\(stem.pool == nil ? " without a max pool" : ""); \(kerasStem)
                """
        }
        let withoutBottleneck = net.steps.first { step in
            if case .denseLayer(let layer, _, _, _) = step { return layer.bottleneck == nil }
            return false
        }
        if let withoutBottleneck {
            return "\(withoutBottleneck.layer) has no bottleneck; keras.applications' conv_block always has one"
        }
        if net.transitions.contains(where: { $0.pool.kind != .average }) {
            return "a transition max-pools; Keras's transition_block averages"
        }
        return nil
    }

    /// How to build the Keras model these weights load into.
    package static func recipe(_ net: DenseNet, keras2: Bool) -> String {
        let blocks = net.blocks.map(\.layers.count)
        let growth = net.blocks.first?.layers.first?.growth ?? 0
        let named = [[6, 12, 24, 16]: "DenseNet121", [6, 12, 32, 32]: "DenseNet169", [6, 12, 48, 32]: "DenseNet201"]
        let width = net.blocks.first?.layers.first?.bottleneck?.conv.outChannels
        let app = keras2 ? "tf_keras.applications" : "keras.applications"
        let head = net.head
        guard let name = named[blocks], growth == 32, net.stem.conv.outChannels == 64, width == 4 * growth,
            net.transitions.allSatisfy({ $0.conv.outChannels * 2 == $0.norm.channels })
        else {
            return
                """
                a model built like keras.applications.densenet.DenseNet from its conv_block and transition_block \
                (growth rate \(growth), blocks \(blocks)), the same layers in the same order, then load_weights
                """
        }
        if head.pool == .average, head.dense.count == 1, head.dense[0].linear.bias != nil {
            let activation =
                head.activation == .softmax ? "" : ", classifier_activation=\(keras2Activation(head.activation))"
            return "\(app).\(name)(weights=None, classes=\(net.classes)\(activation)), then load_weights"
        }
        let pooling = head.pool.map { $0 == .average ? "'avg'" : "'max'" } ?? "None"
        let dense = head.dense.map { "Dense(\($0.linear.outFeatures), activation=\(keras2Activation($0.activation)))" }
        return "\(app).\(name)(weights=None, include_top=False, pooling=\(pooling))"
            + (dense.isEmpty ? "" : " followed by " + dense.joined(separator: ", ")) + ", then load_weights"
    }

    private static func keras2Activation(_ activation: Head.Activation) -> String {
        switch activation {
        case .linear, .unknown: return "None"
        default: return "'\(activation.rawValue)'"
        }
    }
}
