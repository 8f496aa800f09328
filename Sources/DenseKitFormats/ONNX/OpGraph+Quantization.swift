import DenseKitGraph

extension OpGraph {
    /// Moves every `fakeQuantize` onto the op beside it, so that the recogniser sees a float graph whose ops
    /// carry their quantisation:
    /// - after a conv, BatchNormalization, pool or linear layer (or the ReLU after a conv or a
    ///   BatchNormalization), it is that op's `outputQuantization`;
    /// - after anything else (the input, a Concat, a global pool) it is the `inputQuantization` of the convs,
    ///   BatchNormalizations, pools and linear layers that read it (a Concat that reads it takes none).
    /// onnxruntime's quantiser drops the ReLU after a conv or a BatchNormalization whose output it quantises with
    /// the zero point at the type's lowest code (the rounding clamps at 0 by itself); the ReLU is put back
    /// where a DenseNet has one: after a BatchNormalization, and after a conv that a conv or a max pool reads.
    package func foldingQuantization() throws -> OpGraph {
        var graph = self
        while let index = graph.nodes.firstIndex(where: { if case .fakeQuantize = $0.op { true } else { false } }) {
            try graph.fold(at: index)
        }
        return graph
    }

    /// Folds the `fakeQuantize` node at `index` and removes it (every call removes one: the loop ends).
    private mutating func fold(at index: Int) throws {
        var index = index
        let node = nodes[index]
        guard case .fakeQuantize(let q) = node.op, let value = node.inputs.first else {
            throw ImportError.malformed(.node(node.label), problem: "a quantisation without an input")
        }
        let producer = nodes.firstIndex { $0.output == value }
        var readers = nodes.indices.filter { nodes[$0].inputs.contains(node.output) }
        var replacement = value

        func place(_ target: Int, output: Bool) throws {
            var op = nodes[target].op
            let placed = try Self.setting(q, on: &op, output: output, label: nodes[target].label)
            guard placed else {
                throw ImportError.unsupported(
                    .node(node.label),
                    problem: "quantises the \(output ? "output" : "input") of \(nodes[target].op.name), which DenseKit "
                        + "does not run quantised")
            }
            nodes[target].op = op
        }

        var owner = producer
        if let p = owner, case .relu = nodes[p].op {
            owner = nodes.firstIndex { $0.output == nodes[p].inputs.first }
            if let o = owner, !Self.carriesQuantization(nodes[o].op) { owner = nil }
        }
        // After an op whose output is quantised already, differently, this requantises its codes for the ops that
        // read them: their input's quantisation, as after an op that carries none.
        let requantises = owner.flatMap { Self.outputQuantization(of: nodes[$0].op) }.map { $0 != q } ?? false
        if let owner, Self.carriesQuantization(nodes[owner].op), !requantises {
            try place(owner, output: true)
            let isNorm = if case .batchNorm = nodes[owner].op { true } else { false }
            let isConv = if case .conv = nodes[owner].op { true } else { false }
            let readByConvOrMaxPool = readers.contains {
                switch nodes[$0].op {
                case .conv: return true
                case .pool(let pool): return pool.kind == .max
                default: return false
                }
            }
            if q.clampsAtZero, owner == producer, isNorm || (isConv && readByConvOrMaxPool) {
                replacement = value + "#relu"
                nodes.insert(Node(label: node.label, op: .relu, inputs: [value], output: replacement), at: owner + 1)
                readers = readers.map { $0 > owner ? $0 + 1 : $0 }
                if index > owner { index += 1 }
            }
        } else if readers.isEmpty, node.output == output {
            // The graph's output quantised after an op that carries none (the softmax): the model's output codes.
            outputQuantization = q
        } else {
            // A Transpose (of an NHWC input's codes) moves codes as they are: its readers take them.
            func placeOnInput(_ reader: Int) throws {
                switch nodes[reader].op {
                case .fakeQuantize(let next):
                    guard next.givesTheSameValues(as: q) else {
                        throw ImportError.unsupported(
                            .node(nodes[reader].label), problem: "requantises codes to other parameters")
                    }
                // A Concat joins codes as they are (Keras concatenates a block's features one layer at a time, so
                // the last concatenation is read by the next): what counts is the quantisation its readers take.
                case .concat: break
                case .transpose:
                    let moved = nodes[reader].output
                    for next in nodes.indices where nodes[next].inputs.contains(moved) { try placeOnInput(next) }
                default: try place(reader, output: false)
                }
            }
            for reader in readers { try placeOnInput(reader) }
        }
        for reader in readers {
            nodes[reader].inputs = nodes[reader].inputs.map { $0 == node.output ? replacement : $0 }
        }
        if output == node.output { output = replacement }
        nodes.remove(at: index)
    }

    private static func outputQuantization(of op: Op) -> Quantization? {
        switch op {
        case .conv(let conv): return conv.outputQuantization
        case .batchNorm(let norm): return norm.outputQuantization
        case .pool(let pool): return pool.outputQuantization
        case .linear(let linear): return linear.outputQuantization
        default: return nil
        }
    }

    private static func carriesQuantization(_ op: Op) -> Bool {
        switch op {
        case .conv, .batchNorm, .pool, .linear: return true
        default: return false
        }
    }

    /// Sets `q` as the input's or output's quantisation of `op`; false when `op` carries none. The same op quantised
    /// twice at one side with different parameters is an error.
    private static func setting(_ q: Quantization, on op: inout Op, output: Bool, label: String) throws -> Bool {
        func set(_ slot: inout Quantization?) throws {
            if let existing = slot, existing != q {
                throw ImportError.unsupported(
                    .node(label), problem: "its \(output ? "output" : "input") is quantised twice, differently")
            }
            slot = q
        }
        switch op {
        case .conv(var conv):
            if output { try set(&conv.outputQuantization) } else { try set(&conv.inputQuantization) }
            op = .conv(conv)
        case .batchNorm(var norm):
            if output { try set(&norm.outputQuantization) } else { try set(&norm.inputQuantization) }
            op = .batchNorm(norm)
        case .pool(var pool):
            if output { try set(&pool.outputQuantization) } else { try set(&pool.inputQuantization) }
            op = .pool(pool)
        case .linear(var linear):
            if output { try set(&linear.outputQuantization) } else { try set(&linear.inputQuantization) }
            op = .linear(linear)
        default:
            return false
        }
        return true
    }
}
