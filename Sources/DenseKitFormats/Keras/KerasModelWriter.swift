import DenseKitGraph
import Foundation

/// Writes Keras weights files for keras.applications' DenseNet layout (`KerasLayout`):
/// - `.keras2Weights`: a Keras 2 (tf_keras) weights `.h5` as `save_weights` writes it: root
///   attributes `layer_names` (split into `layer_names0`, ... past HDF5's 64 KiB header limit),
///   `backend`, `keras_version`; one group per layer with `weight_names`, datasets at
///   `<layer>/<layer>/<weight>:0`. `load_weights` (and `DenseNet121(weights=path)`) match it by order.
/// - `.keras3Weights`: a Keras 3 `.weights.h5`: `layers/<class counter>/vars/<i>` with the layer
///   name as attribute `name` of `vars`, and `vars` at the root for the model.
/// Both store HWIO kernels and Keras's BatchNorm epsilon (the variance compensated exactly), and
/// record the head (pool and activations, which a weights file cannot hold) with the provenance in
/// the root attribute `densekit` (JSON), which Keras ignores and DenseKit reads back.
public struct KerasModelWriter: ModelWriter {
    public enum Layout: Sendable { case keras2Weights, keras3Weights }
    public var layout: Layout
    /// The root attribute DenseKit records the head and provenance in.
    package static let metadataAttribute = "densekit"
    /// tf.keras 2 splits string attributes larger than this (HDF5's object header limit).
    package static let attributeLimit = 64512

    public init(layout: Layout) { self.layout = layout }

    public var format: String {
        layout == .keras2Weights ? ConversionTarget.kerasH5.name : ConversionTarget.kerasWeightsH5.name
    }

    public func prepare(_ net: DenseNet, dtype: DType) throws -> (net: DenseNet, conventions: [Convention]) {
        try require(dtype, in: [.f32])
        if let reason = KerasLayout.unsupported(net) { throw UnsupportedTarget(format, reason) }
        var (prepared, conventions) = try FixedLayoutPreparation(
            format: format, framework: "Keras", epsilon: KerasLayout.epsilon, layout: .nhwc
        ).prepare(net)
        let head = net.head
        let recorded = "recorded in the file's densekit attribute, which DenseKit reads back"
        let named = head.dense.map(\.activation).filter { $0 != .linear && $0 != .unknown }
        if !named.isEmpty {
            let activations = named.map(\.rawValue).joined(separator: ", ")
            conventions.append(
                Convention(
                    .drops, "activation",
                    """
                    a weights file stores no activations (the source's: \(activations)); the Keras model you load \
                    it into applies its own (\(recorded))
                    """
                ))
        }
        if head.pool == .average, head.dense.count == 1, head.activation == .linear {
            conventions.append(
                Convention(
                    .adds, "softmax",
                    """
                    keras.applications' DenseNet applies softmax to the classifier by default; the source outputs \
                    logits (build it with classifier_activation=None to keep them)
                    """
                ))
        }
        conventions.append(
            Convention(.changes, "model", "load into " + KerasLayout.recipe(prepared, keras2: layout == .keras2Weights))
        )
        return (prepared, conventions)
    }

    public func encode(_ net: DenseNet, dtype: DType, provenance: Provenance) throws -> Data {
        let layers = KerasLayout.layers(net)
        let metadata: [String: Any] = [
            "head": HeadDescription(net.head).jsonObject, "densekitVersion": provenance.densekitVersion,
            "sourceFile": provenance.sourceFile,
            "sourceSHA256": provenance.sourceSHA256, "sourceFormat": provenance.sourceFormat,
            "convertedAt": provenance.convertedAt,
        ]
        let json = String(
            decoding: try JSONSerialization.data(withJSONObject: metadata, options: [.sortedKeys]), as: UTF8.self)
        return try HDF5File.serialized {
            let file = try HDF5Writer()
            switch layout {
            case .keras2Weights: try writeKeras2(layers, to: file)
            case .keras3Weights: try writeKeras3(layers, to: file)
            }
            try file.stringAttribute("/", Self.metadataAttribute, json)
            return try file.image()
        }
    }

    private func writeKeras2(_ layers: [KerasLayer], to file: HDF5Writer) throws {
        let names = layers.map(\.keras2Name)
        let bytes = names.count * (names.map(\.utf8.count).max() ?? 0)
        if bytes <= Self.attributeLimit {
            try file.stringsAttribute("/", "layer_names", names)
        } else {
            // tf.keras's split: the fewest equal chunks (numpy's array_split) that each fit.
            var chunks = 2
            while bytes / chunks + 64 > Self.attributeLimit { chunks += 1 }
            let per = names.count / chunks
            let extra = names.count % chunks
            var start = 0
            for c in 0..<chunks {
                let end = start + per + (c < extra ? 1 : 0)
                try file.stringsAttribute("/", "layer_names\(c)", Array(names[start..<end]))
                start = end
            }
        }
        try file.stringsAttribute("/", "backend", ["tensorflow"], scalar: true)
        try file.stringsAttribute("/", "keras_version", ["2.21.0"], scalar: true)
        for layer in layers {
            try file.group(layer.keras2Name)
            let weightNames = layer.weights.map { "\(layer.keras2Name)/\($0.name):0" }
            try file.stringsAttribute(layer.keras2Name, "weight_names", weightNames)
            for (name, w) in zip(weightNames, layer.weights) {
                try file.dataset("\(layer.keras2Name)/\(name)", shape: w.tensor.shape, values: w.tensor.values)
            }
        }
    }

    private func writeKeras3(_ layers: [KerasLayer], to file: HDF5Writer) throws {
        try file.group("vars")
        try file.stringAttribute("vars", "name", "densenet")
        var counters: [String: Int] = [:]
        for layer in layers {
            let base = layer.snakeClassName
            let seen = counters[base, default: 0]
            counters[base] = seen + 1
            let vars = "layers/\(seen == 0 ? base : "\(base)_\(seen)")/vars"
            try file.group(vars)
            try file.stringAttribute(vars, "name", layer.name)
            for (i, w) in layer.weights.enumerated() {
                try file.dataset("\(vars)/\(i)", shape: w.tensor.shape, values: w.tensor.values)
            }
        }
    }
}
