import Foundation

/// Reads an ONNX file (external data included) into the canonical DenseNet graph.
public enum ONNXImporter {
    public static func load(path: String) throws -> DenseNet {
        let url = URL(fileURLWithPath: path)
        let data: Data
        do {
            data = try Data(contentsOf: url, options: .mappedIfSafe)
        } catch {
            throw ImportError.unreadable("cannot read file (\(error.localizedDescription))")
        }
        return try load(data: data, path: path)
    }

    /// Reads a model from its bytes; external data is looked up in `path`'s folder.
    public static func load(data: Data, path: String) throws -> DenseNet {
        let url = URL(fileURLWithPath: path)
        let model = try ONNXProtoReader.read(data)
        let opset = model.opsets[""] ?? model.opsets["ai.onnx"] ?? 0
        guard opset >= 7 else { throw ImportError.unsupported("opset \(opset) (DenseKit reads opset 7 and later)") }

        var decoder = ONNXTensorDecoder(folder: url.deletingLastPathComponent())
        var floats: [String: Tensor] = [:]
        var refs: [String: ONNXTensorRef] = [:]
        var storedParameters = 0, storedBytes = 0, storedTensors = 0
        for initializer in model.graph.initializers {
            guard !initializer.name.isEmpty else { throw ImportError.malformed("initializer without a name") }
            guard refs[initializer.name] == nil else {
                throw ImportError.malformed("duplicate initializer '\(initializer.name)'")
            }
            refs[initializer.name] = initializer
            if let e = ONNXTensorDecoder.element(of: initializer.dataType), e != .int64, e != .int32 {
                let t = try decoder.floats(initializer)
                floats[initializer.name] = t
                storedParameters += t.count
                storedBytes += t.storedBytes
                storedTensors += 1
            }
        }

        var ops = ONNXOps(decoder: decoder, floats: floats, refs: refs, opset: opset)
        var nodes: [OpGraph.Node] = []
        for node in model.graph.nodes {
            if let op = try ops.convert(node) { nodes.append(op) }
        }
        let inputs = model.graph.inputs.filter { refs[$0.name] == nil }
        guard inputs.count == 1, let input = inputs.first else {
            throw ImportError.structure("expected one graph input, found \(inputs.count)")
        }
        guard model.graph.outputs.count == 1, let output = model.graph.outputs.first else {
            throw ImportError.structure("expected one graph output, found \(model.graph.outputs.count)")
        }
        guard input.elementType == 1 else {
            throw ImportError.unsupported("input '\(input.name)' is \(ONNXTensorDecoder.typeName(input.elementType)), expected FLOAT")
        }
        guard input.dims.count == 4 else {
            throw ImportError.structure("input '\(input.name)' has \(input.dims.count) dims, expected 4")
        }
        let graph = try OpGraph(nodes: nodes, input: input.name, output: output.name).normalized()
        var recognizer = DenseNetRecognizer(graph: graph)
        let r = try recognizer.recognise()

        let d = input.dims
        let spec: InputSpec
        switch r.inputLayout {
        case .nchw: spec = InputSpec(name: input.name, layout: .nchw, channels: d[1] ?? r.stem.conv.inChannels, height: d[2], width: d[3], batch: d[0])
        case .nhwc: spec = InputSpec(name: input.name, layout: .nhwc, channels: d[3] ?? r.stem.conv.inChannels, height: d[1], width: d[2], batch: d[0])
        }
        guard spec.channels == r.stem.conv.inChannels else {
            throw ImportError.structure("input '\(input.name)' has \(spec.channels) channels, the stem conv reads \(r.stem.conv.inChannels)")
        }
        let producer = [model.producerName, model.producerVersion].filter { !$0.isEmpty }.joined(separator: " ")
        var notes: [String] = []
        if r.stem.normFolded { notes.append("stem BatchNorm folded into the conv by the exporter") }
        if r.blocks.contains(where: { $0.layers.contains { $0.bottleneck?.normFolded == true } }) {
            notes.append("bottleneck BatchNorms folded into the 1x1 convs by the exporter")
        }
        if r.inputLayout == .nhwc { notes.append("NHWC input transposed to NCHW") }
        let source = ModelSource(path: path, format: .onnx, producer: producer.isEmpty ? "unknown" : producer,
                                 opset: opset, storedParameters: storedParameters, storedBytes: storedBytes,
                                 storedTensors: storedTensors, notes: notes)
        return DenseNet(source: source, input: spec, stem: r.stem, blocks: r.blocks,
                        transitions: r.transitions, head: r.head)
    }
}
