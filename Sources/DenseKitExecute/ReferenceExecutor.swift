import DenseKitGraph
import DenseKitKernels

/// The plain executor: runs the canonical graph exactly as written (BN, ReLU, conv, concat, pool in
/// the paper's order, nothing folded or reordered) with the reference kernels. Slow; the tests use
/// it as the ground truth for the SIMD executor.
public struct ReferenceExecutor {
    package let net: DenseNet

    public init(_ net: DenseNet) { self.net = net }

    /// A CHW activation and its size.
    private struct Map {
        var values: [Float]
        var channels: Int
        var height: Int
        var width: Int
    }

    /// One image, CHW; returns every canonical layer's activation (as `LayerActivation` would show it)
    /// and the class scores.
    public func run(image: [Float], height: Int, width: Int) -> (
        layers: [(name: String, values: [Float])], output: [Float]
    ) {
        var layers: [(String, [Float])] = []
        var map = Map(values: image, channels: net.stem.conv.inChannels, height: height, width: width)
        if let transform = net.inputTransform {
            // Written out rather than through `InputTransform.apply`: the reference checks that too.
            let plane = height * width
            for c in 0..<map.channels {
                for i in 0..<plane {
                    map.values[c * plane + i] = map.values[c * plane + i] * transform.scale[c] + transform.offset[c]
                }
            }
        }
        for step in net.steps {
            switch step {
            case .stem(let stem):
                map = conv(map, stem.conv)
                if let stemNorm = stem.norm { map.values = norm(map, stemNorm) }
                if stem.relu { map.values = Reference.relu(map.values) }
                for deep in stem.deep {
                    map = conv(map, deep.conv)
                    if let deepNorm = deep.norm { map.values = norm(map, deepNorm) }
                    map.values = Reference.relu(map.values)
                }
                if let stemPool = stem.pool { map = pool(map, stemPool) }
                if let blur = stem.blur {
                    let result = Reference.blurPool(
                        map.values, channels: map.channels, height: map.height, width: map.width,
                        coefficients: blur.coefficients, stride: blur.stride, padding: blur.padding)
                    map = Map(values: result.values, channels: map.channels, height: result.height, width: result.width)
                }
                layers.append((step.layer.name, map.values))
            case .denseLayer(let layer, _, _, _):
                var branch = map
                branch.values = Reference.relu(norm(map, layer.norm))
                if let bottleneck = layer.bottleneck {
                    branch = conv(branch, bottleneck.conv)
                    if let bottleneckNorm = bottleneck.norm { branch.values = norm(branch, bottleneckNorm) }
                    branch.values = Reference.relu(branch.values)
                }
                let new = conv(branch, layer.conv).values
                layers.append((step.layer.name, new))
                map.values += new  // CHW: concatenating channels appends planes
                map.channels += layer.growth
            case .transition(let transition, _):
                map.values = Reference.relu(norm(map, transition.norm))
                map = pool(conv(map, transition.conv), transition.pool)
                layers.append((step.layer.name, map.values))
            case .head(let head):
                let output = runHead(head, map, layers: &layers)
                return (layers, output)
            }
        }
        return (layers, map.values)  // not reached: the walk ends with the head
    }

    private func runHead(_ head: Head, _ input: Map, layers: inout [(String, [Float])]) -> [Float] {
        let normed = Reference.relu(norm(input, head.norm))
        guard let pool = head.pool else {
            layers.append(("head", normed))
            return normed
        }
        var out =
            pool == .average
            ? Reference.globalAveragePool(normed, channels: input.channels)
            : Reference.globalMaxPool(normed, channels: input.channels)
        if head.dense.isEmpty { layers.append(("head", out)) }
        for (dense, name) in zip(head.dense, head.layerNames) {
            out = Reference.linear(
                out, weight: dense.linear.weight.values, bias: dense.linear.bias?.values,
                outFeatures: dense.linear.outFeatures)
            out.withUnsafeMutableBufferPointer { dense.activation.apply($0) }
            layers.append((name, out))
        }
        return out
    }

    private func conv(_ input: Map, _ conv: Conv2D) -> Map {
        let result = Reference.conv(
            input.values, channels: input.channels, height: input.height, width: input.width,
            weight: conv.weight.values, outChannels: conv.outChannels, kernel: conv.kernel, stride: conv.stride,
            pads: conv.pads, bias: conv.bias?.values)
        return Map(values: result.values, channels: conv.outChannels, height: result.height, width: result.width)
    }

    private func norm(_ input: Map, _ norm: BatchNorm) -> [Float] {
        Reference.batchNorm(
            input.values, channels: input.channels, gamma: norm.gamma.values, beta: norm.beta.values,
            mean: norm.mean.values, variance: norm.variance.values, epsilon: norm.epsilon)
    }

    private func pool(_ input: Map, _ pool: Pool2D) -> Map {
        let result = Reference.pool(
            input.values, channels: input.channels, height: input.height, width: input.width,
            max: pool.kind == .max, kernel: pool.kernel, stride: pool.stride, pads: pool.pads,
            countIncludePad: pool.countIncludePad)
        return Map(values: result.values, channels: input.channels, height: result.height, width: result.width)
    }
}
