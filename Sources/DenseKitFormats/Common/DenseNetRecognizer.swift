import DenseKitGraph

/// Recognises the DenseNet structure in a normalised op graph.
///
/// Dense blocks are found by what each BatchNorm reads, not by how the exporter concatenated:
/// a value's *content* is the ordered list of non-Concat values it is made of, so torchvision's
/// one-Concat-of-everything and Keras's incremental Concat(x, new) both read as [input, f1, f2, ...].
/// Every channel count is checked as it is read; an inconsistency names the node.
package struct DenseNetRecognizer {
    package let graph: OpGraph
    private var producer: [String: Int] = [:]
    private var consumers: [String: [Int]] = [:]
    private var channels: [String: Int] = [:]
    private var normsByContent: [[String]: [Int]] = [:]
    private var contentCache: [String: [String]] = [:]

    package init(graph: OpGraph) {
        self.graph = graph
        for (i, node) in graph.nodes.enumerated() {
            producer[node.output] = i
            for input in node.inputs { consumers[input, default: []].append(i) }
        }
    }

    package struct Result {
        package var inputLayout: InputSpec.Layout
        package var stem: Stem
        package var blocks: [DenseBlock]
        package var transitions: [Transition]
        package var head: Head
        /// An AveragePool read as the global pool (Caffe's models pool the whole final map so): the caller
        /// checks that its window covers the map, which depends on the input size.
        package var headPoolWindow: (label: String, pool: Pool2D)? = nil
    }

    package mutating func recognise() throws -> Result {
        try rejectCycles()
        var value = graph.input
        var layout = InputSpec.Layout.nchw
        if let transpose = single(value), case .transpose(let perm) = transpose.op {
            guard perm == [0, 3, 1, 2] else {
                throw ImportError.unsupported(.node(transpose.label), problem: "input Transpose \(perm)")
            }
            layout = .nhwc
            value = transpose.output
        }
        for (i, node) in graph.nodes.enumerated() {
            if case .batchNorm = node.op { normsByContent[content(node.inputs[0]), default: []].append(i) }
            if case .transpose(let perm) = node.op, node.inputs[0] != graph.input,
                !(perm == [0, 2, 3, 1] && node.output == graph.output)
            {
                throw ImportError.unsupported(.node(node.label), problem: "Transpose inside the network")
            }
        }
        let (stem, stemOut) = try readStem(value)
        channels[stemOut] = stem.outChannels

        var blocks: [DenseBlock] = []
        var transitions: [Transition] = []
        var layers: [DenseLayer] = []
        var features = [stemOut]
        var width = stem.outChannels
        while true {
            let position =
                layers.isEmpty
                ? (blocks.isEmpty ? "the stem" : CanonicalLayer.transition(transitions.count).name)
                : CanonicalLayer.denseLayer(block: blocks.count + 1, layer: layers.count).name
            guard let norms = normsByContent[features], !norms.isEmpty else {
                throw ImportError.structure(
                    "no dense layer, transition or head reads the \(width) channels after \(position)")
            }
            guard norms.count == 1 else {
                throw ImportError.structure(
                    "\(norms.count) BatchNorms read the features after \(position); expected one")
            }
            let normNode = graph.nodes[norms[0]]
            guard case .batchNorm(let norm) = normNode.op else {
                throw ImportError.structure("internal: not a BatchNorm")
            }
            guard norm.channels == width else {
                throw ImportError.mismatch(
                    .node(normNode.label), expected: "\(width) channels after \(position)", found: "\(norm.channels)")
            }
            let relu = try expect(normNode.output, "ReLU after \(normNode.label)") {
                if case .relu = $0 { true } else { false }
            }
            // A backbone without a pool: the final BN-ReLU's map is the model's output (tf2onnx transposes
            // it back to NHWC; DenseKit's output is NCHW whatever the source).
            var mapOutput = relu.output
            if let transpose = single(relu.output), case .transpose([0, 2, 3, 1]) = transpose.op {
                mapOutput = transpose.output
            }
            if mapOutput == graph.output, (consumers[mapOutput] ?? []).isEmpty {
                guard !layers.isEmpty else {
                    throw ImportError.structure(.node(relu.label), problem: "the output follows an empty dense block")
                }
                blocks.append(DenseBlock(layers: layers))
                return Result(
                    inputLayout: layout, stem: stem, blocks: blocks, transitions: transitions,
                    head: Head(norm: norm, pool: nil, dense: []))
            }
            guard let next = single(relu.output) else {
                throw ImportError.structure(
                    .node(relu.label), problem: "expected a single conv or global pool to follow")
            }
            // An average pool right after a BN-ReLU (a transition's follows its conv) is the head's.
            let wholeMapPool: Pool2D? =
                if case .pool(let window) = next.op, window.kind == .average { window } else { nil }
            switch next.op {
            case .globalAveragePool, .globalMaxPool,
                .pool where wholeMapPool != nil:
                guard !layers.isEmpty else {
                    throw ImportError.structure(.node(next.label), problem: "head follows an empty dense block")
                }
                blocks.append(DenseBlock(layers: layers))
                let head = try readHead(after: next, norm: norm, channels: width)
                var result = Result(
                    inputLayout: layout, stem: stem, blocks: blocks, transitions: transitions, head: head)
                result.headPoolWindow = wholeMapPool.map { (next.label, $0) }
                return result
            case .conv(let first):
                try check(first, inChannels: width, next.label)
                if let poolNode = single(next.output), case .pool(let pool) = poolNode.op {
                    guard pool.kind == .average else {
                        throw ImportError.structure(
                            .node(poolNode.label), problem: "transition pool is not an average pool")
                    }
                    guard !layers.isEmpty else {
                        throw ImportError.structure(
                            .node(normNode.label), problem: "transition follows an empty dense block")
                    }
                    blocks.append(DenseBlock(layers: layers))
                    transitions.append(Transition(norm: norm, conv: first, pool: pool))
                    layers = []
                    features = [poolNode.output]
                    width = first.outChannels
                    channels[poolNode.output] = width
                    continue
                }
                var bottleneck: Bottleneck? = nil
                var growthConv = first
                var featureValue = next.output
                if let after = single(next.output), isNormOrRelu(after) {
                    var bottleneckValue = next.output
                    var innerNorm: BatchNorm? = nil
                    if case .batchNorm(let bn) = after.op {
                        guard bn.channels == first.outChannels else {
                            throw ImportError.mismatch(
                                .node(after.label), expected: "\(first.outChannels) channels", found: "\(bn.channels)")
                        }
                        innerNorm = bn
                        bottleneckValue = after.output
                    }
                    let innerRelu = try expect(bottleneckValue, "ReLU in the bottleneck after \(next.label)") {
                        if case .relu = $0 { true } else { false }
                    }
                    let second = try expect(innerRelu.output, "3x3 conv after \(innerRelu.label)") {
                        if case .conv = $0 { true } else { false }
                    }
                    guard case .conv(let c2) = second.op else { throw ImportError.structure("internal: not a conv") }
                    try check(c2, inChannels: first.outChannels, second.label)
                    bottleneck = Bottleneck(conv: first, norm: innerNorm)
                    growthConv = c2
                    featureValue = second.output
                }
                layers.append(DenseLayer(norm: norm, bottleneck: bottleneck, conv: growthConv))
                features.append(featureValue)
                width += growthConv.outChannels
            default:
                throw ImportError.structure(
                    .node(next.label), problem: "expected a conv or global average pool after \(relu.label)")
            }
        }
    }

    // MARK: parts

    private func readStem(_ inputValue: String) throws -> (Stem, String) {
        guard let convNode = single(inputValue), case .conv(let conv) = convNode.op else {
            throw ImportError.structure("the input is not read by exactly one Conv (the stem)")
        }
        guard conv.inChannels == 3 || conv.inChannels == 1 else {
            throw ImportError.structure(.node(convNode.label), problem: "stem conv reads \(conv.inChannels) channels")
        }
        // ImageNet stem: Conv [-> BN] -> ReLU -> MaxPool; timm's deep stem has more Conv [-> BN] -> ReLU
        // before the pool, and its anti-aliased one a blur pool after it. CIFAR stem: the bare Conv.
        var convolutions: [StemConvolution] = []
        var value = convNode.output
        var current = conv
        while true {
            var norm: BatchNorm? = nil
            if let normNode = single(value), case .batchNorm(let bn) = normNode.op, bn.channels == current.outChannels {
                norm = bn
                value = normNode.output
            }
            guard let reluNode = single(value), case .relu = reluNode.op else { break }
            convolutions.append(StemConvolution(conv: current, norm: norm))
            value = reluNode.output
            if let poolNode = single(value), case .pool(let pool) = poolNode.op, pool.kind == .max {
                var (blur, output) = (BlurPool2D?.none, poolNode.output)
                if let blurNode = single(output), case .blurPool(let found, let blurChannels) = blurNode.op {
                    guard blurChannels == current.outChannels else {
                        throw ImportError.mismatch(
                            .node(blurNode.label), expected: "\(current.outChannels) channels (the stem's)",
                            found: "\(blurChannels)")
                    }
                    (blur, output) = (found, blurNode.output)
                }
                let first = convolutions[0]
                let stem = Stem(
                    conv: first.conv, norm: first.norm, relu: true, deep: Array(convolutions.dropFirst()), pool: pool,
                    blur: blur)
                return (stem, output)
            }
            guard let next = single(value), case .conv(let deeper) = next.op else { break }
            current = deeper
            value = next.output
        }
        return (Stem(conv: conv, norm: nil, relu: false, pool: nil), convNode.output)
    }

    /// After the global pool: a chain of linear layers, each with an optional activation, ending at
    /// the graph's output (none for a feature extractor).
    private func readHead(after pool: OpGraph.Node, norm: BatchNorm, channels width: Int) throws -> Head {
        var dense: [Head.Dense] = []
        var value = pool.output
        var features = width
        var last = pool.label
        while value != graph.output {
            let readers = consumers[value] ?? []
            guard readers.count == 1 else {
                throw ImportError.mismatch(
                    .part("the head after \(last)"),
                    expected: "one chain of Gemm/MatMul layers and activations up to the graph output",
                    found: "\(readers.count) nodes reading '\(value)'")
            }
            let node = graph.nodes[readers[0]]
            guard let linear = Self.linear(node.op) else {
                throw ImportError.mismatch(
                    .node(node.label), expected: "a Gemm or MatMul classifier after \(last), or the graph output",
                    found: "\(node.op.name)")
            }
            guard linear.inFeatures == features else {
                throw ImportError.mismatch(
                    .weight(of: .node(node.label), role: "classifier", name: linear.weight.name),
                    expected:
                        """
                        \(features) in-features \
                        (\(dense.isEmpty ? "the final channels" : "the previous layer's outputs"))
                        """,
                    found: "\(linear.inFeatures)")
            }
            value = node.output
            last = node.label
            var activation = Head.Activation.linear
            if let next = single(value), let found = Self.activation(next.op) {
                activation = found
                value = next.output
                last = next.label
            }
            dense.append(Head.Dense(linear, activation))
            features = linear.outFeatures
        }
        guard case .globalMaxPool = pool.op else { return Head(norm: norm, pool: .average, dense: dense) }
        return Head(norm: norm, pool: .max, dense: dense)
    }

    /// A classifier: Gemm or MatMul, or a 1x1 conv on the pooled 1x1 map (Caffe's models), which is the same map.
    private static func linear(_ op: OpGraph.Op) -> Linear? {
        switch op {
        case .linear(let linear): return linear
        case .conv(let conv) where conv.kernel == 1 && conv.weight.shape[3] == 1 && conv.pads.allSatisfy({ $0 == 0 }):
            let weight = conv.weight
            return Linear(
                weight: Tensor(
                    name: weight.name, shape: [weight.shape[0], weight.shape[1]], storedDType: weight.storedDType,
                    values: weight.values),
                bias: conv.bias)
        default: return nil
        }
    }

    private static func activation(_ op: OpGraph.Op) -> Head.Activation? {
        switch op {
        case .relu: return .relu
        case .sigmoid: return .sigmoid
        case .softmax: return .softmax
        case .tanh: return .tanh
        default: return nil
        }
    }

    // MARK: helpers

    /// The ordered non-Concat values a value is made of.
    private mutating func content(_ value: String) -> [String] {
        if let cached = contentCache[value] { return cached }
        var result = [value]
        if let producerIndex = producer[value], case .concat = graph.nodes[producerIndex].op {
            result = []
            for input in graph.nodes[producerIndex].inputs { result += content(input) }
        }
        contentCache[value] = result
        return result
    }

    /// The node reading `value`, when exactly one non-Concat node does.
    private func single(_ value: String) -> OpGraph.Node? {
        let readers = (consumers[value] ?? []).filter { if case .concat = graph.nodes[$0].op { false } else { true } }
        return readers.count == 1 ? graph.nodes[readers[0]] : nil
    }

    private func expect(_ value: String, _ what: String, _ test: (OpGraph.Op) -> Bool) throws -> OpGraph.Node {
        guard let node = single(value), test(node.op) else {
            let found = single(value).map { "found \($0.label)" } ?? "found \((consumers[value] ?? []).count) readers"
            throw ImportError.structure("expected a \(what), \(found)")
        }
        return node
    }

    private func isNormOrRelu(_ node: OpGraph.Node) -> Bool {
        switch node.op {
        case .batchNorm, .relu: return true
        default: return false
        }
    }

    private func check(_ conv: Conv2D, inChannels: Int, _ label: String) throws {
        guard conv.inChannels == inChannels else {
            throw ImportError.mismatch(
                .weight(of: .node(label), role: "weight", name: conv.weight.name),
                expected: "\(inChannels) input channels",
                found: "\(conv.inChannels)")
        }
    }

    /// Rejects graphs whose node inputs refer to values produced later (cycles or wrong order).
    private func rejectCycles() throws {
        var known: Set<String> = [graph.input]
        for node in graph.nodes {
            for input in node.inputs where !known.contains(input) {
                if producer[input] != nil {
                    throw ImportError.structure(
                        .node(node.label), problem: "reads '\(input)' before it is produced (cycle or unsorted graph)")
                }
                throw ImportError.structure(.node(node.label), problem: "reads '\(input)', which nothing produces")
            }
            known.insert(node.output)
        }
    }
}
