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
            case .layer(let b, let i): return CanonicalLayer.denseLayer(block: b, layer: i).name
            case .bottleneck(let b, let i): return "\(CanonicalLayer.denseLayer(block: b, layer: i)).bottleneck"
            case .transition(let t): return CanonicalLayer.transition(t).name
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
            conv: { prefix, c in
                out.append((prefix + ".weight", c.weight))
                if let b = c.bias { out.append((prefix + ".bias", b)) }
            },
            norm: { prefix, n in
                out += [
                    (prefix + ".gamma", n.gamma), (prefix + ".beta", n.beta), (prefix + ".mean", n.mean),
                    (prefix + ".variance", n.variance),
                ]
            })
        for (name, d) in zip(denseNames(count: net.head.dense.count), net.head.dense) {
            out.append((name + ".weight", d.linear.weight))
            if let b = d.linear.bias { out.append((name + ".bias", b)) }
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
            stem: .init(relu: net.stem.relu, pool: net.stem.pool.map(pool)), convs: convs, epsilons: epsilons,
            transitionPools: net.transitions.map { pool($0.pool) },
            // "softmax" for 1.x readers; "head" says it all (a 1.0 reader ignores it).
            softmax: net.head.softmax, head: HeadDescription(net.head),
            input: .init(
                name: input.name, layout: input.layout, channels: input.channels, height: input.height,
                width: input.width, batch: input.batch))
    }

    private static func pool(_ p: Pool2D) -> DNKMetadata.PoolGeometry {
        .init(kind: p.kind, kernel: p.kernel, stride: p.stride, pads: p.pads, countIncludePad: p.countIncludePad)
    }

    /// Rebuilds the graph; every name the structure implies must be present with a consistent shape.
    package static func rebuild(_ s: DNKMetadata.Structure, _ tensors: [String: Tensor], source: ModelSource) throws
        -> DenseNet
    {
        func fail(_ m: String) -> ImportError { .malformed("metadata: \(m)") }
        func tensor(_ name: String, rank: Int) throws -> Tensor {
            guard let t = tensors[name] else { throw ImportError.malformed(.tensor(name), problem: "is missing") }
            guard t.shape.count == rank else {
                throw ImportError.mismatch(
                    .tensor(name), expected: "\(rank) dims", found: "\(t.shape.count)")
            }
            return t
        }
        func pads(_ values: [Int], _ what: String) throws -> [Int] {
            guard values.count == 4, values.allSatisfy({ $0 >= 0 && $0 < 1 << 16 }) else {
                throw fail("bad \(what): \(values)")
            }
            return values
        }
        func conv(_ name: String) throws -> Conv2D {
            let w = try tensor(name + ".weight", rank: 4)
            guard let geometry = s.convs[name] else { throw fail("no geometry for '\(name)'") }
            guard geometry.stride > 0, geometry.stride < 64 else {
                throw fail("stride \(geometry.stride) for '\(name)'")
            }
            let pads = try pads(geometry.pads, "pads of '\(name)'")
            let bias = tensors[name + ".bias"]
            if let bias, bias.shape != [w.shape[0]] {
                throw ImportError.mismatch(
                    .tensor("\(name).bias"), expected: "shape [\(w.shape[0])]", found: "\(bias.shape)")
            }
            guard w.shape[2] == w.shape[3], w.shape.allSatisfy({ $0 > 0 }) else {
                throw ImportError.malformed(.tensor("\(name).weight"), problem: "shape \(w.shape)")
            }
            return Conv2D(weight: w, bias: bias, stride: geometry.stride, pads: pads)
        }
        func norm(_ name: String, channels: Int) throws -> BatchNorm {
            let parts = try ["gamma", "beta", "mean", "variance"].map { try tensor("\(name).\($0)", rank: 1) }
            for t in parts where t.count != channels {
                throw ImportError.mismatch(
                    .tensor(t.name), expected: "\(channels) values (one per channel)", found: "\(t.count)")
            }
            guard let eps = s.epsilons[name].map(Float.init), eps >= 0 else {
                throw fail("no epsilon for '\(name)'")
            }
            return BatchNorm(gamma: parts[0], beta: parts[1], mean: parts[2], variance: parts[3], epsilon: eps)
        }
        func pool(_ p: DNKMetadata.PoolGeometry) throws -> Pool2D {
            guard p.kernel > 0, p.kernel < 64, p.stride > 0, p.stride < 64 else {
                throw fail("pool of kernel \(p.kernel) and stride \(p.stride)")
            }
            return Pool2D(
                kind: p.kind, kernel: p.kernel, stride: p.stride, pads: try pads(p.pads, "pool pads"),
                countIncludePad: p.countIncludePad ?? false)
        }
        let blockSizes = s.blocks
        guard !blockSizes.isEmpty, blockSizes.count < 64, blockSizes.allSatisfy({ $0 > 0 && $0 < 1024 }) else {
            throw fail("blocks \(blockSizes)")
        }
        let stemConv = try conv("stem.conv")
        let stemNorm = tensors["stem.norm.gamma"] != nil ? try norm("stem.norm", channels: stemConv.outChannels) : nil
        let stem = Stem(
            conv: stemConv, norm: stemNorm, relu: s.stem.relu ?? false, pool: try s.stem.pool.map { try pool($0) })
        let pools = s.transitionPools
        guard pools.count == blockSizes.count - 1 else {
            throw fail("\(pools.count) transition pools for \(blockSizes.count) blocks")
        }
        var channels = stemConv.outChannels
        var blocks: [DenseBlock] = []
        var transitions: [Transition] = []
        for (b, n) in blockSizes.enumerated() {
            var layers: [DenseLayer] = []
            for i in 0..<n {
                let p = CanonicalLayer.denseLayer(block: b + 1, layer: i + 1).name
                let n1 = try norm(p + ".norm", channels: channels)
                var bottleneck: Bottleneck? = nil
                var width = channels
                if tensors[p + ".bottleneck.conv.weight"] != nil {
                    let c = try conv(p + ".bottleneck.conv")
                    guard c.inChannels == channels else {
                        throw ImportError.mismatch(
                            .tensor("\(p).bottleneck.conv.weight"),
                            expected: "\(channels) input channels (the block's concatenated features)",
                            found: "\(c.inChannels)")
                    }
                    let n2 =
                        tensors[p + ".bottleneck.norm.gamma"] != nil
                        ? try norm(p + ".bottleneck.norm", channels: c.outChannels) : nil
                    bottleneck = Bottleneck(conv: c, norm: n2)
                    width = c.outChannels
                }
                let c = try conv(p + ".conv")
                guard c.inChannels == width else {
                    throw ImportError.mismatch(
                        .tensor("\(p).conv.weight"), expected: "\(width) input channels", found: "\(c.inChannels)")
                }
                layers.append(DenseLayer(norm: n1, bottleneck: bottleneck, conv: c))
                channels += c.outChannels
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
            s.head ?? HeadDescription(pool: .average, activations: [s.softmax ?? false ? .softmax : .linear])
        let pool = description.pool
        let activations = description.activations
        var dense: [Head.Dense] = []
        var features = channels
        for (name, activation) in zip(denseNames(count: activations.count), activations) {
            let w = try tensor(name + ".weight", rank: 2)
            guard w.shape[1] == features else {
                throw ImportError.mismatch(
                    .tensor("\(name).weight"), expected: "\(features) in-features", found: "\(w.shape[1])")
            }
            let bias = tensors[name + ".bias"]
            if let bias, bias.shape != [w.shape[0]] {
                throw ImportError.mismatch(
                    .tensor("\(name).bias"), expected: "shape [\(w.shape[0])]", found: "\(bias.shape)")
            }
            dense.append(Head.Dense(Linear(weight: w, bias: bias), activation))
            features = w.shape[0]
        }
        let head = Head(norm: headNorm, pool: pool, dense: dense)
        let declared = s.input
        guard declared.channels == stemConv.inChannels else {
            throw ImportError.mismatch(
                .part("metadata input"), expected: "\(stemConv.inChannels) channels (the stem conv's)",
                found: "\(declared.channels)")
        }
        let input = InputSpec(
            name: declared.name ?? "input", layout: declared.layout, channels: declared.channels,
            height: declared.height, width: declared.width, batch: declared.batch)
        return DenseNet(source: source, input: input, stem: stem, blocks: blocks, transitions: transitions, head: head)
    }
}
