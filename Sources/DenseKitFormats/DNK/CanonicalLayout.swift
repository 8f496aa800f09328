import DenseKitGraph
import Foundation

/// The canonical graph as named tensors plus a JSON structure description, and back: what a `.dnk`
/// file stores (names and JSON keys in schemas/dnk-format.md).
package enum CanonicalLayout {
    /// Calls `conv` and `norm` with every conv and BatchNorm under its canonical name, in execution
    /// order: `<layer>.conv` and `<layer>.norm`, a bottleneck's as `<layer>.bottleneck.conv`/`.norm`.
    private static func visit(_ net: DenseNet, conv: (String, Conv2D) -> Void, norm: (String, BatchNorm) -> Void) {
        func prefix(_ part: LayerPart) -> String {
            switch part {
            case .stem: return "stem"
            case .deepStem(let index): return "stem.deep\(index)"
            case .layer(let block, let index): return CanonicalLayer.denseLayer(block: block, layer: index).name
            case .bottleneck(let block, let index):
                return "\(CanonicalLayer.denseLayer(block: block, layer: index)).bottleneck"
            case .transition(let transition): return CanonicalLayer.transition(transition).name
            case .head: return "head"
            }
        }
        net.forEachConvAndNorm(conv: { conv(prefix($0) + ".conv", $1) }, norm: { norm(prefix($0) + ".norm", $1) })
    }

    /// Every tensor under its canonical name, in execution order.
    package static func tensors(of net: DenseNet) -> [(String, Tensor)] {
        var out: [(String, Tensor)] = []
        visit(
            net,
            conv: { prefix, conv in
                out.append((prefix + ".weight", conv.weight))
                if let bias = conv.bias { out.append((prefix + ".bias", bias)) }
            },
            norm: { prefix, norm in
                out += [
                    (prefix + ".gamma", norm.gamma), (prefix + ".beta", norm.beta), (prefix + ".mean", norm.mean),
                    (prefix + ".variance", norm.variance),
                ]
            })
        for (name, dense) in zip(denseNames(count: net.head.dense.count), net.head.dense) {
            out.append((name + ".weight", dense.linear.weight))
            if let bias = dense.linear.bias { out.append((name + ".bias", bias)) }
        }
        return out
    }

    /// The tensor-name prefixes of a head's dense layers: `head.dense<i>` for all but the last,
    /// `head.classifier` for the last (the name a `.dnk` 1.0 file uses for its one dense layer).
    package static func denseNames(count: Int) -> [String] {
        count == 0 ? [] : (1..<count).map { CanonicalLayer.headDense($0).name } + ["head.classifier"]
    }

    /// The geometry and settings that are not tensors (the verifier's summary is added by the writer).
    package static func structure(of net: DenseNet) -> DNKMetadata.Structure {
        var convs: [String: DNKMetadata.ConvGeometry] = [:]
        var epsilons: [String: Double] = [:]
        visit(
            net, conv: { name, c in convs[name] = .init(stride: c.stride, pads: c.pads) },
            norm: { name, n in epsilons[name] = Double(n.epsilon) })
        let input = net.input
        return DNKMetadata.Structure(
            blocks: net.blocks.map(\.layers.count), classes: net.classes,
            stem: .init(
                relu: net.stem.relu, pool: net.stem.pool.map(pool),
                deep: net.stem.deep.isEmpty ? nil : net.stem.deep.count,
                blur: net.stem.blur.map { .init(kernel: $0.kernel, stride: $0.stride) }),
            convs: convs, epsilons: epsilons,
            transitionPools: net.transitions.map { pool($0.pool) },
            // "softmax" for 1.x readers; "head" says it all (a 1.0 reader ignores it).
            softmax: net.head.softmax, head: HeadDescription(net.head),
            input: .init(
                name: input.name, layout: input.layout, channels: input.channels, height: input.height,
                width: input.width, batch: input.batch,
                transform: net.inputTransform.map {
                    .init(
                        scale: $0.scale, offset: $0.offset, origin: $0.origin,
                        codes: $0.quantized.map(DNKMetadata.TransformCodes.init))
                }),
            quantization: quantization(of: net))
    }

    private static func pool(_ geometry: Pool2D) -> DNKMetadata.PoolGeometry {
        .init(
            kind: geometry.kind, kernel: geometry.kernel, stride: geometry.stride, pads: geometry.pads,
            countIncludePad: geometry.countIncludePad)
    }

    /// Rebuilds the graph; every name the structure implies must be present with a consistent shape.
    package static func rebuild(_ structure: DNKMetadata.Structure, _ tensors: [String: Tensor], source: ModelSource)
        throws
        -> DenseNet
    {
        func fail(_ message: String) -> ImportError { .malformed(.part("metadata"), problem: message) }
        func tensor(_ name: String, rank: Int) throws -> Tensor {
            guard let found = tensors[name] else { throw ImportError.malformed(.tensor(name), problem: "is missing") }
            guard found.shape.count == rank else {
                throw ImportError.mismatch(
                    .tensor(name), expected: "\(rank) dims", found: "\(found.shape.count)")
            }
            return found
        }
        func pads(_ values: [Int], _ what: String) throws -> [Int] {
            guard values.count == 4, values.allSatisfy({ $0 >= 0 && $0 < 1 << 16 }) else {
                throw fail("bad \(what): \(values)")
            }
            return values
        }
        func conv(_ name: String) throws -> Conv2D {
            let weight = try tensor(name + ".weight", rank: 4)
            guard let geometry = structure.convs[name] else { throw fail("no geometry for '\(name)'") }
            guard geometry.stride > 0, geometry.stride < 64 else {
                throw fail("stride \(geometry.stride) for '\(name)'")
            }
            let pads = try pads(geometry.pads, "pads of '\(name)'")
            let bias = tensors[name + ".bias"]
            if let bias, bias.shape != [weight.shape[0]] {
                throw ImportError.mismatch(
                    .tensor("\(name).bias"), expected: "shape [\(weight.shape[0])]", found: "\(bias.shape)")
            }
            guard weight.shape[2] == weight.shape[3], weight.shape.allSatisfy({ $0 > 0 }) else {
                throw ImportError.malformed(.tensor("\(name).weight"), problem: "shape \(weight.shape)")
            }
            return Conv2D(weight: weight, bias: bias, stride: geometry.stride, pads: pads)
        }
        func norm(_ name: String, channels: Int) throws -> BatchNorm {
            let parts = try ["gamma", "beta", "mean", "variance"].map { try tensor("\(name).\($0)", rank: 1) }
            for found in parts where found.count != channels {
                throw ImportError.mismatch(
                    .tensor(found.name), expected: "\(channels) values (one per channel)", found: "\(found.count)")
            }
            guard let eps = structure.epsilons[name].map(Float.init), eps >= 0 else {
                throw fail("no epsilon for '\(name)'")
            }
            return BatchNorm(gamma: parts[0], beta: parts[1], mean: parts[2], variance: parts[3], epsilon: eps)
        }
        func pool(_ geometry: DNKMetadata.PoolGeometry) throws -> Pool2D {
            guard geometry.kernel > 0, geometry.kernel < 64, geometry.stride > 0, geometry.stride < 64 else {
                throw fail("pool of kernel \(geometry.kernel) and stride \(geometry.stride)")
            }
            return Pool2D(
                kind: geometry.kind, kernel: geometry.kernel, stride: geometry.stride,
                pads: try pads(geometry.pads, "pool pads"),
                countIncludePad: geometry.countIncludePad ?? false)
        }
        let blockSizes = structure.blocks
        guard !blockSizes.isEmpty, blockSizes.count < 64, blockSizes.allSatisfy({ $0 > 0 && $0 < 1024 }) else {
            throw fail("blocks \(blockSizes)")
        }
        let stemConv = try conv("stem.conv")
        let stemNorm = tensors["stem.norm.gamma"] != nil ? try norm("stem.norm", channels: stemConv.outChannels) : nil
        let deepCount = structure.stem.deep ?? 0
        guard (0...8).contains(deepCount) else { throw fail("\(deepCount) deep stem convs") }
        var stemWidth = stemConv.outChannels
        let deep = try (0..<deepCount).map { index -> StemConvolution in
            let name = "stem.deep\(index + 1)"
            let deepConv = try conv(name + ".conv")
            guard deepConv.inChannels == stemWidth else {
                throw ImportError.mismatch(
                    .tensor("\(name).conv.weight"), expected: "\(stemWidth) input channels",
                    found: "\(deepConv.inChannels)")
            }
            stemWidth = deepConv.outChannels
            let deepNorm =
                tensors[name + ".norm.gamma"] != nil ? try norm(name + ".norm", channels: deepConv.outChannels) : nil
            return StemConvolution(conv: deepConv, norm: deepNorm)
        }
        let blur = try structure.stem.blur.map { geometry -> BlurPool2D in
            guard (2...BlurPool2D.maximumKernel).contains(geometry.kernel), (1..<64).contains(geometry.stride) else {
                throw fail("blur pool of side \(geometry.kernel) and stride \(geometry.stride)")
            }
            return BlurPool2D(kernel: geometry.kernel, stride: geometry.stride)
        }
        let stem = Stem(
            conv: stemConv, norm: stemNorm, relu: structure.stem.relu ?? false, deep: deep,
            pool: try structure.stem.pool.map { try pool($0) }, blur: blur)
        let pools = structure.transitionPools
        guard pools.count == blockSizes.count - 1 else {
            throw fail("\(pools.count) transition pools for \(blockSizes.count) blocks")
        }
        var channels = stemWidth
        var blocks: [DenseBlock] = []
        var transitions: [Transition] = []
        for (b, n) in blockSizes.enumerated() {
            var layers: [DenseLayer] = []
            for i in 0..<n {
                let prefix = CanonicalLayer.denseLayer(block: b + 1, layer: i + 1).name
                let n1 = try norm(prefix + ".norm", channels: channels)
                var bottleneck: Bottleneck? = nil
                var width = channels
                if tensors[prefix + ".bottleneck.conv.weight"] != nil {
                    let layerConv = try conv(prefix + ".bottleneck.conv")
                    guard layerConv.inChannels == channels else {
                        throw ImportError.mismatch(
                            .tensor("\(prefix).bottleneck.conv.weight"),
                            expected: "\(channels) input channels (the block's concatenated features)",
                            found: "\(layerConv.inChannels)")
                    }
                    let n2 =
                        tensors[prefix + ".bottleneck.norm.gamma"] != nil
                        ? try norm(prefix + ".bottleneck.norm", channels: layerConv.outChannels) : nil
                    bottleneck = Bottleneck(conv: layerConv, norm: n2)
                    width = layerConv.outChannels
                }
                let layerConv = try conv(prefix + ".conv")
                guard layerConv.inChannels == width else {
                    throw ImportError.mismatch(
                        .tensor("\(prefix).conv.weight"), expected: "\(width) input channels",
                        found: "\(layerConv.inChannels)")
                }
                layers.append(DenseLayer(norm: n1, bottleneck: bottleneck, conv: layerConv))
                channels += layerConv.outChannels
            }
            blocks.append(DenseBlock(layers: layers))
            if b < blockSizes.count - 1 {
                let tn = try norm("\(CanonicalLayer.transition(b + 1)).norm", channels: channels)
                let tc = try conv("\(CanonicalLayer.transition(b + 1)).conv")
                guard tc.inChannels == channels else {
                    throw ImportError.mismatch(
                        .tensor("\(CanonicalLayer.transition(b + 1)).conv.weight"),
                        expected: "\(channels) input channels (the block's output)", found: "\(tc.inChannels)")
                }
                transitions.append(Transition(norm: tn, conv: tc, pool: try pool(pools[b])))
                channels = tc.outChannels
            }
        }
        let headNorm = try norm("head.norm", channels: channels)
        // A 1.0 file has no "head": a global average pool and one dense layer, softmax or not.
        let description =
            structure.head
            ?? HeadDescription(pool: .average, activations: [structure.softmax ?? false ? .softmax : .linear])
        let pool = description.pool
        let activations = description.activations
        var dense: [Head.Dense] = []
        var features = channels
        for (name, activation) in zip(denseNames(count: activations.count), activations) {
            let weight = try tensor(name + ".weight", rank: 2)
            guard weight.shape[1] == features else {
                throw ImportError.mismatch(
                    .tensor("\(name).weight"), expected: "\(features) in-features", found: "\(weight.shape[1])")
            }
            let bias = tensors[name + ".bias"]
            if let bias, bias.shape != [weight.shape[0]] {
                throw ImportError.mismatch(
                    .tensor("\(name).bias"), expected: "shape [\(weight.shape[0])]", found: "\(bias.shape)")
            }
            dense.append(Head.Dense(Linear(weight: weight, bias: bias), activation))
            features = weight.shape[0]
        }
        let head = Head(norm: headNorm, pool: pool, dense: dense)
        let declared = structure.input
        guard declared.channels == stemConv.inChannels else {
            throw ImportError.mismatch(
                .part("metadata input"), expected: "\(stemConv.inChannels) channels (the stem conv's)",
                found: "\(declared.channels)")
        }
        let input = InputSpec(
            name: declared.name ?? "input", layout: declared.layout, channels: declared.channels,
            height: declared.height, width: declared.width, batch: declared.batch)
        var net = DenseNet(
            source: source, input: input, stem: stem, blocks: blocks, transitions: transitions, head: head)
        // Its sizes and values are checked by the validation every model passes.
        net.inputTransform = try declared.transform.map {
            var transform = InputTransform(scale: $0.scale, offset: $0.offset, origin: $0.origin)
            if let codes = $0.codes {
                guard let steps = codes.transform else {
                    throw ImportError.mismatch(
                        .part("metadata input.transform.codes"),
                        expected: "each step's constant as `constant` or as `constants`", found: "both or neither")
                }
                transform.quantized = steps
            }
            return transform
        }
        return try structure.quantization.map { try applying($0, to: net) } ?? net
    }
}
