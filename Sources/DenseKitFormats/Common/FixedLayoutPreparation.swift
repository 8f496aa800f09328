import DenseKitGraph

/// What the weights-only formats with a fixed layer layout (torchvision's state_dict, Keras's
/// DenseNet) need of a graph before it is written: a BatchNorm wherever their layers have one, their
/// BatchNorm epsilon, no conv biases, and the convolution and pooling geometry their models build.
/// The rewrites are exact (see `BatchNormRewrites`), and each is reported as a convention.
package struct FixedLayoutPreparation {
    package var format: String
    /// The framework's name in messages: `torchvision`, `Keras`.
    package var framework: String
    package var epsilon: Float
    /// The input layout the framework's models take.
    package var layout: InputSpec.Layout

    package func prepare(_ net: DenseNet) throws -> (net: DenseNet, conventions: [Convention]) {
        if let layer = net.convsWithOwnBias.first {
            throw UnsupportedTarget(
                format,
                """
                \(layer): its conv has a bias, which \(framework)'s DenseNet does not have (and no BatchNorm was \
                folded into it)
                """
            )
        }
        var conventions: [Convention] = []
        let (unfolded, restored) = net.unfoldingBatchNorms(epsilon: epsilon)
        if restored > 0 {
            conventions.append(
                Convention(
                    .adds, "BatchNorm",
                    """
                    the \(restored) BatchNorm\(restored == 1 ? "" : "s") the source had folded into the conv \
                    before it (stem, bottlenecks) written as \(framework)'s BatchNorm that adds the conv's bias \
                    (gamma 1, mean 0, variance 1 - epsilon): exactly what the folded conv computes
                    """
                ))
        }
        let epsilons = Set(net.batchNormEpsilons)
        let (compensated, changed, inexact) = unfolded.settingBatchNormEpsilon(epsilon)
        if changed > 0 {
            let from = epsilons.filter { $0 != epsilon }.sorted().map { "\($0)" }.joined(separator: ", ")
            conventions.append(
                Convention(
                    .changes, "BatchNorm epsilon",
                    """
                    \(framework)'s is \(epsilon), the source's \(from): each moving variance is adjusted so that \
                    variance + epsilon is the same float32 (\(changed) BatchNorms)
                    """
                ))
        }
        if let first = inexact.first {
            throw UnsupportedTarget(
                format,
                """
                \(first): no float32 moving variance gives the same variance + epsilon with \(framework)'s \
                epsilon \(epsilon)
                """
            )
        }
        try checkGeometry(compensated)
        conventions += Self.layoutChanges(net, to: layout, framework)
        var prepared = compensated
        prepared.input.layout = layout
        if let transform = net.inputTransform {
            conventions.append(
                Convention(
                    .drops, "input transform",
                    """
                    \(framework)'s weights hold no preprocessing: apply the model's own \(transform.summary) per \
                    input channel (\(transform.origin.joined(separator: ", "))) before the model
                    """))
            prepared.inputTransform = nil
        }
        return (prepared, conventions)
    }

    /// The input's layout, and the output's for a head that outputs the feature map, when `layout` differs from the
    /// source's.
    package static func layoutChanges(_ net: DenseNet, to layout: InputSpec.Layout, _ framework: String) -> [Convention]
    {
        guard net.input.layout != layout else { return [] }
        let (to, from) = (layout.rawValue.uppercased(), net.input.layout.rawValue.uppercased())
        var out = [Convention(.changes, "input layout", "\(framework) takes \(to); the source took \(from)")]
        if net.head.pool == nil {
            out.append(
                Convention(.changes, "output layout", "the feature map comes out \(to); the source's came out \(from)"))
        }
        return out
    }

    /// The geometry the layout's models build (read back from the layout, as a torchvision state_dict
    /// and keras.applications agree on it) against the graph's, layer by layer.
    private func checkGeometry(_ net: DenseNet) throws {
        var entries: [String: StateDictImporter.Entry] = [:]
        for (key, value) in TorchvisionStateDict.entries(net) {
            if case .float(let tensor) = value {
                entries[key] = .float(tensor)
            } else {
                entries[key] = .integer(shape: [])
            }
        }
        let source = ModelSource(
            path: "", format: .safetensors, producer: "", storedParameters: 0, storedBytes: 0, storedTensors: 0,
            notes: [])
        let expected = try StateDictImporter.build(
            entries, source: source, head: HeadDescription(net.head), blurPool: net.stem.blur != nil)
        for ((name, found), (_, wanted)) in zip(net.geometry, expected.geometry) where found != wanted {
            throw UnsupportedTarget(
                format, "\(name): expected \(wanted) (the layer \(framework)'s DenseNet builds), found \(found)")
        }
    }
}

extension DenseNet {
    /// Every BatchNorm's epsilon.
    package var batchNormEpsilons: [Float] {
        var all: [Float] = []
        _ = mappingBatchNorms { _, n in
            all.append(n.epsilon)
            return n
        }
        return all
    }

    /// Each conv's and pool's geometry by canonical layer name, as text.
    package var geometry: [(String, String)] {
        func conv(_ convolution: Conv2D) -> String {
            "\(convolution.kernel)x\(convolution.kernel) conv stride \(convolution.stride) pads \(convolution.pads)"
        }
        func pool(_ pooling: Pool2D?) -> String {
            guard let pooling else { return "no pool" }
            let countsPadding = pooling.kind == .average && pooling.pads != [0, 0, 0, 0] && pooling.countIncludePad
            return
                """
                \(pooling.kernel)x\(pooling.kernel) \(pooling.kind.rawValue) pool stride \(pooling.stride) pads \
                \(pooling.pads)\(countsPadding ? " counting padding" : "")
                """
        }
        var out: [(String, String)] = []
        for step in steps {
            switch step {
            case .stem(let stem):
                let convs = stem.convolutions.map { conv($0.conv) }.joined(separator: ", ")
                let blur = stem.blur.map { ", blur pool \($0.kernel)x\($0.kernel) stride \($0.stride)" } ?? ""
                out.append((step.layer.name, convs + (stem.relu ? ", ReLU" : "") + ", " + pool(stem.pool) + blur))
            case .denseLayer(let layer, _, _, _):
                out.append((step.layer.name, (layer.bottleneck.map { conv($0.conv) + ", " } ?? "") + conv(layer.conv)))
            case .transition(let transition, _):
                out.append((step.layer.name, conv(transition.conv) + ", " + pool(transition.pool)))
            case .head:
                break
            }
        }
        return out
    }
}
