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

    /// The geometry and settings that are not tensors.
    package static func structure(of net: DenseNet) -> [String: Any] {
        var convs: [String: Any] = [:]
        var epsilons: [String: Any] = [:]
        visit(
            net, conv: { name, c in convs[name] = ["stride": c.stride, "pads": c.pads] },
            norm: { name, n in epsilons[name] = Double(n.epsilon) })
        var stem: [String: Any] = ["relu": net.stem.relu]
        if let p = net.stem.pool { stem["pool"] = pool(p) }
        let input = net.input
        var inputObject: [String: Any] = [
            "name": input.name, "layout": input.layout.rawValue, "channels": input.channels,
        ]
        if let h = input.height { inputObject["height"] = h }
        if let w = input.width { inputObject["width"] = w }
        if let b = input.batch { inputObject["batch"] = b }
        return [
            "blocks": net.blocks.map(\.layers.count),
            "classes": net.classes,
            "stem": stem,
            "convs": convs,
            "epsilons": epsilons,
            "transitionPools": net.transitions.map { pool($0.pool) },
            // "softmax" for 1.x readers; "head" says it all (a 1.0 reader ignores it).
            "softmax": net.head.softmax,
            "head": HeadDescription(net.head).jsonObject,
            "input": inputObject,
        ]
    }

    private static func pool(_ p: Pool2D) -> [String: Any] {
        [
            "kind": p.kind.rawValue, "kernel": p.kernel, "stride": p.stride, "pads": p.pads,
            "countIncludePad": p.countIncludePad,
        ]
    }

    /// Rebuilds the graph; every name the structure implies must be present with a consistent shape.
    package static func rebuild(_ s: [String: Any], _ tensors: [String: Tensor], source: ModelSource) throws -> DenseNet
    {
        func fail(_ m: String) -> ImportError { .malformed("metadata: \(m)") }
        func tensor(_ name: String, rank: Int) throws -> Tensor {
            guard let t = tensors[name] else { throw ImportError.malformed("tensor '\(name)' is missing") }
            guard t.shape.count == rank else {
                throw ImportError.mismatch(
                    "tensor '\(name)'", expected: "\(rank) dims", found: "\(t.shape.count)", kind: .malformed)
            }
            return t
        }
        func ints(_ v: Any?, _ what: String, count: Int? = nil) throws -> [Int] {
            guard let items = v as? [Any], case let a = items.compactMap(jsonInt), a.count == items.count,
                count.map({ a.count == $0 }) ?? true, a.allSatisfy({ $0 >= 0 && $0 < 1 << 16 })
            else {
                throw fail("bad \(what)")
            }
            return a
        }
        guard let convs = s["convs"] as? [String: Any], let epsilons = s["epsilons"] as? [String: Any] else {
            throw fail("no convs or epsilons")
        }
        func conv(_ name: String) throws -> Conv2D {
            let w = try tensor(name + ".weight", rank: 4)
            guard let g = convs[name] as? [String: Any], let stride = jsonInt(g["stride"]), stride > 0, stride < 64
            else {
                throw fail("no geometry for '\(name)'")
            }
            let pads = try ints(g["pads"], "pads of '\(name)'", count: 4)
            let bias = tensors[name + ".bias"]
            if let bias, bias.shape != [w.shape[0]] {
                throw ImportError.mismatch(
                    "tensor '\(name).bias'", expected: "shape [\(w.shape[0])]", found: "\(bias.shape)", kind: .malformed
                )
            }
            guard w.shape[2] == w.shape[3], w.shape.allSatisfy({ $0 > 0 }) else {
                throw ImportError(.malformed, subject: "tensor '\(name).weight'", problem: "shape \(w.shape)")
            }
            return Conv2D(weight: w, bias: bias, stride: stride, pads: pads)
        }
        func norm(_ name: String, channels: Int) throws -> BatchNorm {
            let parts = try ["gamma", "beta", "mean", "variance"].map { try tensor("\(name).\($0)", rank: 1) }
            for t in parts where t.count != channels {
                throw ImportError.mismatch(
                    "tensor '\(t.name)'", expected: "\(channels) values (one per channel)", found: "\(t.count)",
                    kind: .malformed)
            }
            guard let eps = jsonDouble(epsilons[name]).map(Float.init), eps >= 0 else {
                throw fail("no epsilon for '\(name)'")
            }
            return BatchNorm(gamma: parts[0], beta: parts[1], mean: parts[2], variance: parts[3], epsilon: eps)
        }
        func pool(_ v: Any?) throws -> Pool2D {
            guard let p = v as? [String: Any], let kind = (p["kind"] as? String).flatMap(Pool2D.Kind.init(rawValue:)),
                let k = p["kernel"] as? Int, let stride = p["stride"] as? Int, k > 0, k < 64, stride > 0, stride < 64
            else {
                throw fail("bad pool")
            }
            return Pool2D(
                kind: kind, kernel: k, stride: stride, pads: try ints(p["pads"], "pool pads", count: 4),
                countIncludePad: p["countIncludePad"] as? Bool ?? false)
        }
        guard let stemInfo = s["stem"] as? [String: Any], let blockSizes = s["blocks"] as? [Int], !blockSizes.isEmpty,
            blockSizes.count < 64, blockSizes.allSatisfy({ $0 > 0 && $0 < 1024 })
        else { throw fail("bad stem or blocks") }
        let stemConv = try conv("stem.conv")
        let stemNorm = tensors["stem.norm.gamma"] != nil ? try norm("stem.norm", channels: stemConv.outChannels) : nil
        let stem = Stem(
            conv: stemConv, norm: stemNorm, relu: stemInfo["relu"] as? Bool ?? false,
            pool: try stemInfo["pool"].map { try pool($0) })
        let pools = s["transitionPools"] as? [Any] ?? []
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
                            "tensor '\(p).bottleneck.conv.weight'",
                            expected: "\(channels) input channels (the block's concatenated features)",
                            found: "\(c.inChannels)", kind: .malformed)
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
                        "tensor '\(p).conv.weight'", expected: "\(width) input channels", found: "\(c.inChannels)",
                        kind: .malformed)
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
                        "tensor '\(CanonicalLayer.transition(b + 1)).conv.weight'",
                        expected: "\(channels) input channels (the block's output)", found: "\(tc.inChannels)",
                        kind: .malformed)
                }
                transitions.append(Transition(norm: tn, conv: tc, pool: try pool(pools[b])))
                channels = tc.outChannels
            }
        }
        let headNorm = try norm("head.norm", channels: channels)
        // A 1.0 file has no "head": a global average pool and one dense layer, softmax or not.
        let description =
            try s["head"].map { try HeadDescription(jsonObject: $0, subject: "structure.head") }
            ?? HeadDescription(pool: .average, activations: [s["softmax"] as? Bool ?? false ? .softmax : .linear])
        let pool = description.pool
        let activations = description.activations
        var dense: [Head.Dense] = []
        var features = channels
        for (name, activation) in zip(denseNames(count: activations.count), activations) {
            let w = try tensor(name + ".weight", rank: 2)
            guard w.shape[1] == features else {
                throw ImportError.mismatch(
                    "tensor '\(name).weight'", expected: "\(features) in-features", found: "\(w.shape[1])",
                    kind: .malformed)
            }
            let bias = tensors[name + ".bias"]
            if let bias, bias.shape != [w.shape[0]] {
                throw ImportError.mismatch(
                    "tensor '\(name).bias'", expected: "shape [\(w.shape[0])]", found: "\(bias.shape)", kind: .malformed
                )
            }
            dense.append(Head.Dense(Linear(weight: w, bias: bias), activation))
            features = w.shape[0]
        }
        let head = Head(norm: headNorm, pool: pool, dense: dense)
        guard let i = s["input"] as? [String: Any],
            let layout = (i["layout"] as? String).flatMap(InputSpec.Layout.init(rawValue:)),
            let c = i["channels"] as? Int, c == stemConv.inChannels
        else { throw fail("bad input") }
        let input = InputSpec(
            name: i["name"] as? String ?? "input", layout: layout, channels: c,
            height: i["height"] as? Int, width: i["width"] as? Int, batch: i["batch"] as? Int)
        return DenseNet(source: source, input: input, stem: stem, blocks: blocks, transitions: transitions, head: head)
    }
}

/// A JSON number as `MetadataJSON` gives it: an integer is an `Int`, any other number a `Double`
/// (integers only where exact).
private func jsonInt(_ v: Any?) -> Int? {
    if let i = v as? Int { return i }
    return (v as? Double).flatMap { Int(exactly: $0) }
}

private func jsonDouble(_ v: Any?) -> Double? {
    if let d = v as? Double { return d }
    return (v as? Int).map(Double.init)
}
