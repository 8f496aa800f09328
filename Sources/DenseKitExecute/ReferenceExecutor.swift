import DenseKitGraph
import DenseKitKernels

/// The plain executor: runs the canonical graph exactly as written (BN, ReLU, conv, concat, pool in
/// the paper's order, nothing folded or reordered) with the reference kernels. Slow; the tests use
/// it as the ground truth for the SIMD executor.
public struct ReferenceExecutor {
    package let net: DenseNet

    public init(_ net: DenseNet) { self.net = net }

    /// One image, CHW; returns every canonical layer's activation (as `LayerActivation` would show it)
    /// and the class scores.
    public func run(image: [Float], height: Int, width: Int) -> (
        layers: [(name: String, values: [Float])], output: [Float]
    ) {
        var layers: [(String, [Float])] = []
        var (x, h, w) = conv(image, net.stem.conv.inChannels, height, width, net.stem.conv)
        var c = net.stem.outChannels
        if let bn = net.stem.norm { x = norm(x, c, bn) }
        if net.stem.relu { x = Reference.relu(x) }
        if let p = net.stem.pool { (x, h, w) = pool(x, c, h, w, p) }
        layers.append(("stem", x))
        for (b, block) in net.blocks.enumerated() {
            for (i, layer) in block.layers.enumerated() {
                var y = Reference.relu(norm(x, c, layer.norm))
                var yc = c
                if let bn = layer.bottleneck {
                    y = conv(y, c, h, w, bn.conv).values
                    yc = bn.conv.outChannels
                    if let n = bn.norm { y = norm(y, yc, n) }
                    y = Reference.relu(y)
                }
                let new = conv(y, yc, h, w, layer.conv).values
                layers.append((CanonicalLayer.denseLayer(block: b + 1, layer: i + 1).name, new))
                x += new  // CHW: concatenating channels appends planes
                c += layer.growth
            }
            if b < net.transitions.count {
                let t = net.transitions[b]
                let y = Reference.relu(norm(x, c, t.norm))
                let (z, zh, zw) = conv(y, c, h, w, t.conv)
                (x, h, w) = pool(z, t.conv.outChannels, zh, zw, t.pool)
                c = t.conv.outChannels
                layers.append((CanonicalLayer.transition(b + 1).name, x))
            }
        }
        let map = Reference.relu(norm(x, c, net.head.norm))
        guard let pool = net.head.pool else {
            layers.append(("head", map))
            return (layers, map)
        }
        var out =
            pool == .average ? Reference.globalAveragePool(map, channels: c) : Reference.globalMaxPool(map, channels: c)
        if net.head.dense.isEmpty { layers.append(("head", out)) }
        for (d, name) in zip(net.head.dense, net.head.layerNames) {
            out = Reference.linear(
                out, weight: d.linear.weight.values, bias: d.linear.bias?.values, outFeatures: d.linear.outFeatures)
            out.withUnsafeMutableBufferPointer { d.activation.apply($0) }
            layers.append((name, out))
        }
        return (layers, out)
    }

    private func conv(_ x: [Float], _ c: Int, _ h: Int, _ w: Int, _ k: Conv2D) -> (
        values: [Float], height: Int, width: Int
    ) {
        Reference.conv(
            x, channels: c, height: h, width: w, weight: k.weight.values, outChannels: k.outChannels,
            kernel: k.kernel, stride: k.stride, pads: k.pads, bias: k.bias?.values)
    }

    private func norm(_ x: [Float], _ c: Int, _ bn: BatchNorm) -> [Float] {
        Reference.batchNorm(
            x, channels: c, gamma: bn.gamma.values, beta: bn.beta.values, mean: bn.mean.values,
            variance: bn.variance.values, epsilon: bn.epsilon)
    }

    private func pool(_ x: [Float], _ c: Int, _ h: Int, _ w: Int, _ p: Pool2D) -> ([Float], Int, Int) {
        let r = Reference.pool(
            x, channels: c, height: h, width: w, max: p.kind == .max, kernel: p.kernel,
            stride: p.stride, pads: p.pads, countIncludePad: p.countIncludePad)
        return (r.values, r.height, r.width)
    }
}
