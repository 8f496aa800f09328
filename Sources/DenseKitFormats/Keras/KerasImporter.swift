import DenseKitGraph
import Foundation

/// Reads Keras DenseNet files (`.h5` full model or weights-only, Keras 2 and 3; `.weights.h5`;
/// `.keras`) into the canonical graph, by keras.applications.densenet's layer names:
/// conv1_conv, conv1_bn, conv{B}_block{i}_{0_bn,1_conv,1_bn,2_conv}, pool{B}_{bn,conv}, bn, predictions.
/// Kernels HWIO become OIHW, the Dense kernel (in, out) becomes (out, in), ZeroPadding2D layers become
/// the padding of the conv or pool after them; the input stays NHWC as Keras declares it.
public enum KerasImporter {
    public static func load(path: String, trustStoredNames: Bool = true) throws -> DenseNet {
        try load(
            data: FileMapping.contents(path: path), path: path, trustStoredNames: trustStoredNames, inMemory: false)
    }

    /// Reads a model from its bytes (HDF5 through the in-memory driver when `inMemory`).
    public static func load(data: Data, path: String, trustStoredNames: Bool = true, inMemory: Bool = true) throws
        -> DenseNet
    {
        var configJSON: String? = nil
        var version: String? = nil
        var image: Data? = nil
        let format: ModelSource.Format
        if data.starts(with: ZipArchive.signature) {
            let zip = try ZipArchive(data: data)
            guard let weights = try zip.member("model.weights.h5") else {
                throw ImportError.malformed(".keras archive has no model.weights.h5")
            }
            configJSON = try zip.member("config.json").map { String(decoding: $0, as: UTF8.self) }
            if let meta = try zip.member("metadata.json"),
                let object = try? JSONSerialization.jsonObject(with: meta) as? [String: Any]
            {
                version = object["keras_version"] as? String
            }
            image = weights
            format = .kerasArchive
        } else {
            guard data.starts(with: HDF5File.signature) else {
                throw ImportError.malformed("not an HDF5 file (bad signature)")
            }
            format = .kerasH5
            if inMemory { image = data }
        }
        // A `.keras` config is read first: its layer names are the ones to name a refusal by.
        let archiveConfig = try configJSON.map { try KerasModelConfig(json: $0) }
        let weights = try HDF5File.serialized {
            let file = try image.map { try HDF5File(image: $0) } ?? HDF5File(path: path)
            return try KerasWeights(file: file, trustStoredNames: trustStoredNames)
        }
        let config = try archiveConfig ?? weights.modelConfig.map { try KerasModelConfig(json: $0) }
        var builder = Builder(weights: weights, config: config)
        var net = try builder.build()

        let stored = weights.stored
        let resolvedFormat: ModelSource.Format =
            format == .kerasArchive
            ? .kerasArchive
            : weights.layout == .fullModel
                ? .kerasH5 : weights.layout == .weightsOnly ? .kerasWeightsH5 : .kerasV3Weights
        var notes = builder.notes
        if let nested = config?.nestedModel ?? weights.nestedModel {
            notes.append(
                "the backbone is nested in the model as its layer '\(nested)'; the layers after it are the head")
        }
        let preprocessing = weights.order.filter { $0.hasPrefix("rescaling") || $0.hasPrefix("normalization") }
        if config == nil, !preprocessing.isEmpty {
            notes.append(
                """
                the file lists preprocessing layers (\(preprocessing.joined(separator: ", "))) but, weights only, not \
                what they do: they are not applied (read the full model, .h5 or .keras, to have them)
                """)
        }
        if weights.namesRecovered {
            notes.append("the file stores no layer names; they were recovered from creation order and shapes")
        }
        let unrecorded = "(version not recorded)"
        net.source = ModelSource(
            path: path, format: resolvedFormat,
            producer: "keras "
                + (version ?? weights.kerasVersion ?? (weights.layout == .keras3Weights ? "3" : unrecorded)),
            storedParameters: stored.parameters, storedBytes: stored.bytes, storedTensors: stored.tensors, notes: notes)
        return net
    }

    /// Builds the canonical graph from named Keras layers.
    package struct Builder {
        package let weights: KerasWeights
        package let config: KerasModelConfig?
        package var notes: [String] = []

        package init(weights: KerasWeights, config: KerasModelConfig?) {
            self.weights = weights
            self.config = config
            if config == nil {
                notes.append(
                    """
                    no model config in the file: padding, strides and BN epsilon assumed as \
                    keras.applications.densenet builds them
                    """
                )
            }
        }

        package mutating func build() throws -> DenseNet {
            guard weights.layers["conv1_conv"] != nil else {
                let sample = weights.layers.keys.sorted().prefix(4).joined(separator: ", ")
                throw ImportError.structure("not a Keras DenseNet: no layer conv1_conv (found \(sample)...)")
            }
            if let config { try Self.checkBackboneLayers(config) }
            let stemConv = try conv("conv1_conv", defaultStride: 2, defaultPads: 3)
            let stemPool = try pool("pool1", kind: .max, defaultSize: 3, defaultStride: 2, defaultPads: 1)
            let stem = Stem(
                conv: stemConv, norm: try norm("conv1_bn", channels: stemConv.outChannels), relu: true, pool: stemPool)
            var blocks: [DenseBlock] = []
            var transitions: [Transition] = []
            var channels = stemConv.outChannels
            var stage = 2
            while weights.layers["conv\(stage)_block1_0_bn"] != nil {
                var layers: [DenseLayer] = []
                var index = 1
                while weights.layers["conv\(stage)_block\(index)_0_bn"] != nil {
                    let base = "conv\(stage)_block\(index)"
                    let layerNorm = try norm(base + "_0_bn", channels: channels)
                    let first = try conv(base + "_1_conv", defaultStride: 1, defaultPads: 0, inChannels: channels)
                    let layer: DenseLayer
                    if weights.layers[base + "_2_conv"] != nil {
                        let inner = try norm(base + "_1_bn", channels: first.outChannels)
                        let second = try conv(
                            base + "_2_conv", defaultStride: 1, defaultPads: 1, inChannels: first.outChannels)
                        layer = DenseLayer(
                            norm: layerNorm, bottleneck: Bottleneck(conv: first, norm: inner), conv: second)
                    } else {
                        layer = DenseLayer(norm: layerNorm, bottleneck: nil, conv: first)
                    }
                    layers.append(layer)
                    channels += layer.growth
                    index += 1
                }
                blocks.append(DenseBlock(layers: layers))
                guard weights.layers["pool\(stage)_bn"] != nil else { break }
                let tn = try norm("pool\(stage)_bn", channels: channels)
                let tc = try conv("pool\(stage)_conv", defaultStride: 1, defaultPads: 0, inChannels: channels)
                let tp =
                    try pool("pool\(stage)_pool", kind: .average, defaultSize: 2, defaultStride: 2, defaultPads: 0)
                    ?? Pool2D(kind: .average, kernel: 2, stride: 2)
                transitions.append(Transition(norm: tn, conv: tc, pool: tp))
                channels = tc.outChannels
                stage += 1
            }
            guard !blocks.isEmpty else {
                throw ImportError.structure("not a Keras DenseNet: no dense block conv2_block1")
            }
            let headNorm = try norm("bn", channels: channels)
            let head = try config.map { try headFromConfig($0, norm: headNorm) } ?? headFromWeights(norm: headNorm)
            let shape = config?.inputShape ?? []
            let input = InputSpec(
                name: "input", layout: .nhwc, channels: stemConv.inChannels,
                height: shape.count == 3 ? shape[0] : nil, width: shape.count == 3 ? shape[1] : nil, batch: nil)
            let source = ModelSource(
                path: "", format: .kerasH5, producer: "keras", storedParameters: 0, storedBytes: 0, storedTensors: 0)
            var net = DenseNet(
                source: source, input: input, stem: stem, blocks: blocks, transitions: transitions, head: head)
            net.inputTransform = try config.flatMap { try preprocessing($0, channels: stemConv.inChannels) }
            return net
        }

        /// Refuses a layer the DenseNet does not have before its final `relu` (a layer put between
        /// blocks would otherwise go unread, as would a second backbone's).
        private static func checkBackboneLayers(_ config: KerasModelConfig) throws {
            let own =
                #/
                conv1_(conv|bn|relu) | pool1 | bn | relu | pool\d+_(bn|relu|conv|pool)
                | conv\d+_block\d+_(0_bn|0_relu|1_conv|1_bn|1_relu|2_conv|concat)
                /#
            let stem = config.order.firstIndex(of: "conv1_conv") ?? 0
            for (index, name) in config.order.prefix(while: { $0 != "relu" }).enumerated() {
                guard let layer = config.layers[name], (try? own.wholeMatch(in: name)) == nil else { continue }
                // Preprocessing before the stem is the input transform (`preprocessing`).
                if index < stem && Self.preprocessingClasses.contains(layer.className) { continue }
                throw ImportError.mismatch(
                    .kerasLayer(name, className: layer.className),
                    expected:
                        "only keras.applications DenseNet layers before the final 'relu' (and Rescaling or "
                        + "Normalization before the stem)",
                    found: "\(layer.className) inside the backbone")
            }
        }

        /// The head of a model with a config: the layers after the final `relu`, in the config's order,
        /// each reading the one before it, up to the model's output.
        private func headFromConfig(_ config: KerasModelConfig, norm: BatchNorm) throws -> Head {
            guard let start = config.order.firstIndex(of: "relu") else {
                throw ImportError.mismatch(
                    .part("the model config"), expected: "the final activation layer 'relu' after 'bn'", found: "none")
            }
            var pool: Head.Pool? = nil
            var dense: [Head.Dense] = []
            var previous = "relu"
            for name in config.order[(start + 1)...] {
                guard let layer = config.layers[name] else { continue }
                let subject = ImportSubject.kerasLayer(name, className: layer.className)
                guard layer.inbound == [previous] else {
                    throw ImportError.mismatch(
                        subject, expected: "the head's next layer, reading '\(previous)' alone",
                        found: "inputs \(layer.inbound)")
                }
                previous = name
                switch layer.className {
                case "GlobalAveragePooling2D", "GlobalMaxPooling2D":
                    guard pool == nil, dense.isEmpty else {
                        throw ImportError.mismatch(
                            subject, expected: "one global pool, right after 'relu'", found: "another")
                    }
                    pool = layer.className == "GlobalAveragePooling2D" ? .average : .max
                case "Dropout", "SpatialDropout2D", "GaussianDropout", "GaussianNoise", "AlphaDropout",
                    "ActivityRegularization", "Identity":
                    continue
                case "Flatten":
                    guard pool != nil else {
                        throw ImportError.mismatch(
                            subject, expected: "a global pool before Flatten", found: "the feature map")
                    }
                case "Dense":
                    guard pool != nil else {
                        throw ImportError.mismatch(
                            subject, expected: "a global pool before the dense layers", found: "the feature map")
                    }
                    let features = dense.last?.linear.outFeatures ?? norm.channels
                    dense.append(
                        Head.Dense(
                            try self.dense(name, inFeatures: features, first: dense.isEmpty),
                            try Self.activation(layer.activation ?? "linear", subject)))
                case "Activation", "ReLU", "Softmax":
                    guard let last = dense.last, last.activation == .linear else {
                        throw ImportError.mismatch(
                            subject, expected: "an activation after a Dense layer without one",
                            found: dense.isEmpty ? "no Dense layer before it" : "a Dense layer with its own activation")
                    }
                    let activation =
                        layer.className == "ReLU"
                        ? "relu" : layer.className == "Softmax" ? "softmax" : layer.activation ?? "linear"
                    dense[dense.count - 1].activation = try Self.activation(activation, subject)
                default:
                    throw ImportError.mismatch(
                        subject, expected: "a global pool, Dropout, Flatten, Dense or Activation layer in the head",
                        found: layer.className)
                }
            }
            if !config.outputs.isEmpty, config.outputs != [previous] {
                throw ImportError.mismatch(
                    .part("the model config"), expected: "one output, the head's last layer '\(previous)'",
                    found: "outputs \(config.outputs)")
            }
            return Head(norm: norm, pool: pool, dense: dense)
        }

        /// The head of a weights-only file: its dense layers in order; the pool told by a pooling
        /// layer's name where the file lists one. No activation is stored: keras.applications'
        /// `predictions` is its softmax, any other dense layer's is unknown.
        private mutating func headFromWeights(norm: BatchNorm) throws -> Head {
            if let description = weights.headDescription {
                var linears: [Linear] = []
                for name in weights.denseLayers {
                    linears.append(
                        try dense(name, inFeatures: linears.last?.outFeatures ?? norm.channels, first: linears.isEmpty))
                }
                let head = try description.head(norm: norm, linears: linears, subject: .part("dense layers"))
                notes.append("head as recorded by DenseKit in the file's densekit attribute: \(head.summary)")
                return head
            }
            guard weights.denseLayers.count <= 1 else {
                throw ImportError.mismatch(
                    .part("head"),
                    expected: """
                        one dense layer in a weights-only file (it stores no activations, so the one between two \
                        dense layers is unknown)
                        """,
                    found: "\(weights.denseLayers.count); read the full model (.h5 or .keras) instead")
            }
            var dense: [Head.Dense] = []
            for name in weights.denseLayers {
                let features = dense.last?.linear.outFeatures ?? norm.channels
                dense.append(
                    Head.Dense(
                        try self.dense(name, inFeatures: features, first: dense.isEmpty),
                        name == "predictions" ? .softmax : .unknown))
            }
            // Pooling layers store no weights but are listed: after `bn` in an .h5, by class in a .weights.h5.
            let names = weights.layout == .keras3Weights ? weights.order[...] : weights.order.drop { $0 != "bn" }
            let average = names.contains { $0 == "avg_pool" || $0.hasPrefix("global_average_pooling2d") }
            let max = names.contains { $0 == "max_pool" || $0.hasPrefix("global_max_pooling2d") }
            let pool: Head.Pool? = max && !average ? .max : average || !dense.isEmpty ? .average : nil
            if !average && !max {
                notes.append(
                    dense.isEmpty
                        ? "no pooling layer in the file: the output is the final feature map"
                        : "no pooling layer named in the file: a global average pool assumed before the dense layers")
            }
            if dense.contains(where: { $0.activation == .unknown }) {
                notes.append("a weights-only file stores no activations: the output is the last dense layer's values")
            }
            return Head(norm: norm, pool: pool, dense: dense)
        }

        /// A Dense layer: kernel (in, out) to (out, in), and its bias.
        /// A Dense layer reading `inFeatures` values (the final channels for the first one).
        private func dense(_ name: String, inFeatures: Int, first: Bool) throws -> Linear {
            let stored = try layer(name)
            guard let kernel = stored.tensors.first, kernel.shape.count == 2 else {
                throw ImportError.mismatch(
                    .kerasLayer(name), expected: "a 2-D kernel", found: "\(stored.tensors.first?.shape ?? [])")
            }
            guard kernel.shape[0] == inFeatures else {
                throw ImportError.mismatch(
                    .weight(of: .kerasLayer(name), role: "kernel", name: kernel.name),
                    expected:
                        """
                        \(inFeatures) in-features \
                        (\(first ? "the final channels" : "the previous dense layer's outputs"))
                        """,
                    found: "\(kernel.shape[0])")
            }
            let bias = stored.tensors.count > 1 ? stored.tensors[1] : nil
            if let bias, bias.count != kernel.shape[1] {
                throw ImportError.mismatch(
                    .weight(of: .kerasLayer(name), role: "bias", name: bias.name),
                    expected: "\(kernel.shape[1]) values (one per output)",
                    found: "\(bias.count)")
            }
            return Linear(weight: kernel.transposed(), bias: bias)
        }

        private static func activation(_ name: String, _ subject: ImportSubject) throws -> Head.Activation {
            guard let activation = Head.Activation(rawValue: name), activation != .unknown else {
                throw ImportError.mismatch(
                    subject, expected: "activation linear, relu, sigmoid, softmax or tanh", found: "'\(name)'")
            }
            return activation
        }

        private func layer(_ name: String) throws -> KerasWeights.Layer {
            guard let stored = weights.layers[name] else {
                throw ImportError.structure(.kerasLayer(name), problem: "is missing")
            }
            return stored
        }

        /// A Conv2D layer: HWIO kernel to OIHW; padding from a preceding ZeroPadding2D or 'same'.
        private func conv(_ name: String, defaultStride: Int, defaultPads: Int, inChannels: Int? = nil) throws -> Conv2D
        {
            let stored = try layer(name)
            guard let kernel = stored.tensors.first, kernel.shape.count == 4 else {
                throw ImportError.structure(.kerasLayer(name), problem: "expected a 4-D kernel")
            }
            guard kernel.shape[0] == kernel.shape[1] else {
                throw ImportError.unsupported(.kerasLayer(name), problem: "non-square kernel \(kernel.shape)")
            }
            if let inChannels, kernel.shape[2] != inChannels {
                throw ImportError.mismatch(
                    .weight(of: .kerasLayer(name), role: "kernel", name: kernel.name),
                    expected: "\(inChannels) input channels",
                    found: "\(kernel.shape[2])")
            }
            let (kh, kw) = (kernel.shape[0], kernel.shape[1])
            let weight = kernel.permuted(ConvKernelLayout.hwio, to: .oihw)
            let bias = stored.tensors.count > 1 ? stored.tensors[1] : nil
            var stride = defaultStride
            var pads = [Int](repeating: defaultPads, count: 4)
            if let layerConfig = config?.layers[name] {
                let subject = ImportSubject.kerasLayer(name)
                if let size = layerConfig.kernelSize, size != [kh, kw] {
                    throw ImportError.mismatch(
                        subject, expected: "kernel_size \([kh, kw]) (the stored kernel's shape \(kernel.shape))",
                        found: "kernel_size \(size) in the config")
                }
                if let dilation = layerConfig.dilation, dilation != [1, 1] {
                    throw ImportError.mismatch(
                        subject, expected: "dilation_rate [1, 1]", found: "\(dilation)")
                }
                if let groups = layerConfig.groups, groups != 1 {
                    throw ImportError.mismatch(subject, expected: "groups 1", found: "\(groups)")
                }
                stride = try uniform(layerConfig.strides, "strides", subject) ?? 1
                let same = layerConfig.padding == "same" ? kh / 2 : 0
                pads = (layerConfig.zeroPadding ?? [0, 0, 0, 0]).map { $0 + same }
            }
            return Conv2D(weight: weight, bias: bias, stride: stride, pads: pads)
        }

        private func norm(_ name: String, channels: Int) throws -> BatchNorm {
            let stored = try layer(name)
            guard stored.tensors.count == 4 else {
                throw ImportError.mismatch(
                    .kerasLayer(name), expected: "4 weights (gamma, beta, moving mean and variance)",
                    found: "\(stored.tensors.count)")
            }
            for t in stored.tensors where t.count != channels {
                throw ImportError.mismatch(
                    .weight(of: .kerasLayer(name), role: "weight", name: t.name),
                    expected: "\(channels) values (one per channel)",
                    found: "\(t.count)")
            }
            let eps = config?.layers[name]?.epsilon ?? 1.001e-5
            return BatchNorm(
                gamma: stored.tensors[0], beta: stored.tensors[1], mean: stored.tensors[2], variance: stored.tensors[3],
                epsilon: eps)
        }

        private func pool(_ name: String, kind: Pool2D.Kind, defaultSize: Int, defaultStride: Int, defaultPads: Int)
            throws -> Pool2D?
        {
            guard let config else {
                return Pool2D(
                    kind: kind, kernel: defaultSize, stride: defaultStride,
                    pads: [Int](repeating: defaultPads, count: 4))
            }
            guard let layerConfig = config.layers[name] else { return nil }
            let subject = ImportSubject.kerasLayer(name)
            let size = try uniform(layerConfig.poolSize, "pool_size", subject) ?? defaultSize
            return Pool2D(
                kind: kind, kernel: size, stride: try uniform(layerConfig.strides, "strides", subject) ?? size,
                pads: layerConfig.zeroPadding ?? [0, 0, 0, 0], countIncludePad: kind == .average)
        }

        /// A config value that must be the same on both axes (DenseKit's convs and pools are square).
        private func uniform(_ axes: [Int]?, _ key: String, _ subject: ImportSubject) throws -> Int? {
            guard let axes else { return nil }
            guard axes.count == 2, axes[0] == axes[1] else {
                throw ImportError.mismatch(
                    subject, expected: "\(key) equal on both axes", found: "\(axes)")
            }
            return axes[0]
        }
    }
}
