import DenseKitGraph

/// A quantised model's parameters in a `.dnk` (5.0): the integer tensors' scales and zero points by tensor name, the
/// activation quantisations by op name, and back.
extension CanonicalLayout {
    /// The activation quantisations an op carries.
    package struct OpQuantizations: Equatable {
        var input: Quantization?
        var output: Quantization?
        var product: Quantization?
    }

    /// `net` with `body` shown, and free to change, the activation quantisations of every conv, BatchNorm, pool and
    /// linear layer under its canonical name (the tensors' prefixes: `stem.conv`, `block1.layer1.norm`,
    /// `transition1.pool`, `head.classifier`), in execution order.
    package static func mappingActivationQuantizations(
        _ net: DenseNet, _ body: (String, inout OpQuantizations) throws -> Void
    ) rethrows -> DenseNet {
        func conv(_ name: String, _ c: inout Conv2D) throws {
            var q = OpQuantizations(input: c.inputQuantization, output: c.outputQuantization)
            try body(name, &q)
            (c.inputQuantization, c.outputQuantization) = (q.input, q.output)
        }
        func norm(_ name: String, _ n: inout BatchNorm) throws {
            var q = OpQuantizations(
                input: n.inputQuantization, output: n.outputQuantization, product: n.productQuantization)
            try body(name, &q)
            (n.inputQuantization, n.outputQuantization, n.productQuantization) = (q.input, q.output, q.product)
        }
        func pool(_ name: String, _ p: inout Pool2D) throws {
            var q = OpQuantizations(input: p.inputQuantization, output: p.outputQuantization)
            try body(name, &q)
            (p.inputQuantization, p.outputQuantization) = (q.input, q.output)
        }
        return try net.mappingSteps { step in
            switch step {
            case .stem(var stem):
                try conv("stem.conv", &stem.conv)
                if var n = stem.norm {
                    try norm("stem.norm", &n)
                    stem.norm = n
                }
                for i in stem.deep.indices {
                    try conv("stem.deep\(i + 1).conv", &stem.deep[i].conv)
                    if var n = stem.deep[i].norm {
                        try norm("stem.deep\(i + 1).norm", &n)
                        stem.deep[i].norm = n
                    }
                }
                if var p = stem.pool {
                    try pool("stem.pool", &p)
                    stem.pool = p
                }
                return .stem(stem)
            case .denseLayer(var layer, let block, let index, let ends):
                let prefix = CanonicalLayer.denseLayer(block: block, layer: index).name
                try norm(prefix + ".norm", &layer.norm)
                if var bottleneck = layer.bottleneck {
                    try conv(prefix + ".bottleneck.conv", &bottleneck.conv)
                    if var n = bottleneck.norm {
                        try norm(prefix + ".bottleneck.norm", &n)
                        bottleneck.norm = n
                    }
                    layer.bottleneck = bottleneck
                }
                try conv(prefix + ".conv", &layer.conv)
                return .denseLayer(layer, block: block, index: index, endsBlock: ends)
            case .transition(var transition, let index):
                let prefix = CanonicalLayer.transition(index).name
                try norm(prefix + ".norm", &transition.norm)
                try conv(prefix + ".conv", &transition.conv)
                try pool(prefix + ".pool", &transition.pool)
                return .transition(transition, index: index)
            case .head(var head):
                try norm("head.norm", &head.norm)
                for (i, name) in denseNames(count: head.dense.count).enumerated() {
                    var linear = head.dense[i].linear
                    var q = OpQuantizations(
                        input: linear.inputQuantization, output: linear.outputQuantization,
                        product: linear.productQuantization)
                    try body(name, &q)
                    (linear.inputQuantization, linear.outputQuantization, linear.productQuantization) = (
                        q.input, q.output, q.product
                    )
                    head.dense[i].linear = linear
                }
                var output = OpQuantizations(output: head.outputQuantization)
                try body("head", &output)
                head.outputQuantization = output.output
                return .head(head)
            }
        }
    }

    /// What a `.dnk` says of a quantised model (nil for a float one).
    package static func quantization(of net: DenseNet) -> DNKMetadata.QuantizationDescription? {
        guard net.isQuantized else { return nil }
        var tensors: [String: DNKMetadata.Parameters] = [:]
        for (name, tensor) in Self.tensors(of: net) {
            if let quantized = tensor.quantized { tensors[name] = .init(quantized.quantization) }
        }
        var activations: [String: DNKMetadata.Activations] = [:]
        _ = mappingActivationQuantizations(net) { name, q in
            guard q != OpQuantizations() else { return }
            activations[name] = .init(
                input: q.input.map(DNKMetadata.Parameters.init), output: q.output.map(DNKMetadata.Parameters.init),
                product: q.product.map(DNKMetadata.Parameters.init))
        }
        return .init(arithmetic: net.integerArithmetic, tensors: tensors, activations: activations)
    }

    /// `net` with the activation quantisations and arithmetic `description` gives; a name that is no op of the
    /// model is a malformed file.
    package static func applying(_ description: DNKMetadata.QuantizationDescription, to net: DenseNet) throws
        -> DenseNet
    {
        var unused = Set(description.activations.keys)
        var result = mappingActivationQuantizations(net) { name, q in
            guard let stored = description.activations[name] else { return }
            unused.remove(name)
            q = OpQuantizations(
                input: stored.input?.quantization, output: stored.output?.quantization,
                product: stored.product?.quantization)
        }
        if let name = unused.sorted().first {
            throw ImportError.malformed(
                .part("metadata"), problem: "structure.quantization.activations: '\(name)' is no op of the model")
        }
        result.integerArithmetic = description.arithmetic
        return result
    }
}
