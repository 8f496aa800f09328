import DenseKitGraph
import Foundation

/// Reads an ONNX file (external data included) into the canonical DenseNet graph.
public enum ONNXImporter {
    public static func load(path: String) throws -> DenseNet {
        try load(reading: { try FileMapping.contents(path: path) }, path: path)
    }

    /// Reads the model from the bytes `reading` returns, released once parsed, before the weights are
    /// decoded (peak memory).
    package static func load(reading: () throws -> Data, path: String) throws -> DenseNet {
        func parse() throws -> ONNXModel { try ONNXProtobuf.read(reading()) }
        return try build(parse(), path: path)
    }

    /// Reads a model from its bytes; external data is looked up in `path`'s folder.
    public static func load(data: Data, path: String) throws -> DenseNet {
        try build(ONNXProtobuf.read(data), path: path)
    }

    private static func build(_ model: consuming ONNXModel, path: String) throws -> DenseNet {
        let url = URL(fileURLWithPath: path)
        let opset = model.opsets[""] ?? model.opsets["ai.onnx"] ?? 0
        guard opset >= 7 else { throw ImportError.unsupported("opset \(opset) (DenseKit reads opset 7 and later)") }

        var decoder = ONNXTensorDecoder(folder: url.deletingLastPathComponent())
        var floats: [String: Tensor] = [:]
        var refs: [String: ONNXTensorRef] = [:]
        var storedParameters = 0
        var storedBytes = 0
        var storedTensors = 0
        // Each float payload is dropped once decoded, so the raw bytes and the floats of all the
        // weights are never held at the same time.
        var initializers = model.graph.initializers
        model.graph.initializers = []
        for i in initializers.indices {
            let name = initializers[i].name
            guard !name.isEmpty else { throw ImportError.malformed("initializer without a name") }
            guard refs[name] == nil else {
                throw ImportError.malformed(.tensor(name), problem: "duplicate initializer")
            }
            if let element = ONNXTensorDecoder.element(of: initializers[i].dataType), element != .int64,
                element != .int32
            {
                let tensor = try decoder.floats(initializers[i])
                initializers[i].payload = .none
                floats[name] = tensor
                storedParameters += tensor.count
                storedBytes += tensor.storedBytes
                storedTensors += 1
            } else if let storage = ONNXTensorDecoder.quantizedStorage(of: initializers[i].dataType) {
                let count = try ONNXTensorDecoder.elementCount(initializers[i])
                storedParameters += count
                storedBytes += count * (storage == .int32 ? 4 : 1)
                storedTensors += 1
            }
            refs[name] = initializers[i]
        }
        initializers = []

        var ops = ONNXOps(decoder: decoder, floats: floats, refs: refs, opset: opset)
        var nodes: [OpGraph.Node] = []
        for node in model.graph.nodes {
            nodes += try ops.convert(node)
        }
        let inputs = model.graph.inputs.filter { refs[$0.name] == nil }
        guard inputs.count == 1, let input = inputs.first else {
            throw ImportError.mismatch(.part("graph inputs"), expected: "1 (the image)", found: "\(inputs.count)")
        }
        guard model.graph.outputs.count == 1, let output = model.graph.outputs.first else {
            throw ImportError.mismatch(.part("graph outputs"), expected: "1", found: "\(model.graph.outputs.count)")
        }
        // FLOAT16 throughout (onnxconverter-common's float16 conversion): run in float32, the weights widened
        // exactly, like any other float16 file.
        guard input.elementType == 1 || input.elementType == 10 else {
            throw ImportError.mismatch(
                .input(input.name), expected: "FLOAT or FLOAT16", found: ONNXTensorDecoder.typeName(input.elementType))
        }
        guard input.dims.count == 4 else {
            throw ImportError.mismatch(.input(input.name), expected: "4 dims", found: "\(input.dims.count)")
        }
        let graph = try OpGraph(nodes: nodes, input: input.name, output: output.name).normalized().foldingQuantization()
        var recognizer = DenseNetRecognizer(graph: graph)
        let recognized = try recognizer.recognise()

        let dims = input.dims
        let spec: InputSpec
        switch recognized.inputLayout {
        case .nchw:
            spec = InputSpec(
                name: input.name, layout: .nchw, channels: dims[1] ?? recognized.stem.conv.inChannels, height: dims[2],
                width: dims[3],
                batch: dims[0])
        case .nhwc:
            spec = InputSpec(
                name: input.name, layout: .nhwc, channels: dims[3] ?? recognized.stem.conv.inChannels, height: dims[1],
                width: dims[2],
                batch: dims[0])
        }
        guard spec.channels == recognized.stem.conv.inChannels else {
            throw ImportError.structure(
                "input '\(input.name)' has \(spec.channels) channels, the stem conv reads "
                    + "\(recognized.stem.conv.inChannels)"
            )
        }
        let producer = [model.producerName, model.producerVersion].filter { !$0.isEmpty }.joined(separator: " ")
        var notes: [String] = []
        if recognized.stem.normFolded { notes.append("stem BatchNorm folded into the conv by the exporter") }
        if recognized.blocks.contains(where: { $0.layers.contains { $0.bottleneck?.normFolded == true } }) {
            notes.append("bottleneck BatchNorms folded into the 1x1 convs by the exporter")
        }
        if recognized.inputLayout == .nhwc { notes.append("NHWC input transposed to NCHW") }
        if graph.foldedIntoBatchNorms > 0 {
            notes.append(
                """
                \(graph.foldedIntoBatchNorms) Mul and Add nodes after a BatchNormalization folded into it (Caffe's \
                Scale layer: the ONNX model zoo's layout)
                """)
        }
        if let window = recognized.headPoolWindow {
            notes.append("global pool: \(window.label) over the whole final map")
        }
        if input.elementType == 10 {
            notes.append("float16 input and output: DenseKit takes and gives float32 (any float .npy as input)")
        }
        let source = ModelSource(
            path: path, format: .onnx, producer: producer.isEmpty ? "unknown" : producer,
            opset: opset, storedParameters: storedParameters, storedBytes: storedBytes,
            storedTensors: storedTensors, notes: notes)
        var net = DenseNet(
            source: source, input: spec, stem: recognized.stem, blocks: recognized.blocks,
            transitions: recognized.transitions, head: recognized.head)
        net.inputTransform = try graph.inputTransform(channels: spec.channels)
        net.head.outputQuantization = graph.outputQuantization
        if let summary = net.quantizationSummary {
            let layout = model.graph.nodes.contains { $0.opType == "QLinearConv" } ? "QOperator" : "QDQ"
            net.source.notes.append(
                "int8, onnxruntime's \(layout) format: \(summary); runs with onnxruntime's arithmetic")
        }
        if let window = recognized.headPoolWindow { try checkWholeMap(window, of: net) }
        // A 4-D output after a pool (a 1x1 conv classifier) keeps its unit axes, as the file declares it.
        net.head.outputKeepsMapAxes = net.head.pool != nil && output.dims.count == 4
        if net.head.outputKeepsMapAxes {
            net.source.notes.append("output [N, \(net.classes), 1, 1] as the file declares it")
        }
        return net
    }

    /// An AveragePool read as the global pool must cover the whole final map, which the input's
    /// fixed size determines.
    private static func checkWholeMap(_ window: (label: String, pool: Pool2D), of net: DenseNet) throws {
        guard let height = net.input.height, let width = net.input.width else {
            throw ImportError.mismatch(
                .node(window.label), expected: "a fixed input size (an AveragePool is the global pool at one size)",
                found: "a dynamic one")
        }
        try net.validate()  // the geometry first: the sizes below assume a valid one
        let map = try FeatureMapSizes(net, height: height, width: width).head
        let pool = window.pool
        guard pool.kernel == map.height, pool.kernel == map.width, pool.pads.allSatisfy({ $0 == 0 }) else {
            throw ImportError.mismatch(
                .node(window.label), expected: "an AveragePool over the whole \(map) final map (the global pool)",
                found: "kernel \(pool.kernel)x\(pool.kernel), pads \(pool.pads)")
        }
    }
}
