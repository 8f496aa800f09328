import DenseKitGraph
import Foundation

/// The weights of a Keras model by layer, whatever the file layout:
/// - full-model `.h5` (Keras 2 and 3): root attributes `model_config`, `keras_version`; group
///   `model_weights` with attribute `layer_names`; each layer group's `weight_names` attribute lists
///   dataset paths inside it (Keras 2 names end in ":0").
/// - weights-only `.h5` (`save_weights`, the published pretrained files): `layer_names` on the root.
/// - Keras 3 `.weights.h5`: `layers/<class-name counter>/vars/<0...>`; recent Keras stores the layer
///   name as attribute `name` of `vars`, older files store none and names are recovered from the
///   creation order (see `KerasLayerNames`).
package struct KerasWeights {
    package enum Layout { case fullModel, weightsOnly, keras3Weights }

    package struct Layer {
        /// Layer name with "/" replaced by "_" (tf.keras 2 names the stem "conv1/conv").
        package var name: String
        /// Weights in the order Keras lists them (kernel, bias; gamma, beta, moving mean, moving variance).
        package var tensors: [Tensor]
    }

    package var layout: Layout
    package var layers: [String: Layer] = [:]
    /// Layer names in the file's order (weightless layers included): `layer_names` of an `.h5`; the
    /// class-counter keys of a Keras 3 `.weights.h5` (there every layer, pooling included, has one).
    package var order: [String] = []
    /// The dense layers (2-D kernels) in the order the model applies them.
    package var denseLayers: [String] = []
    package var kerasVersion: String?
    package var modelConfig: String?
    /// The head as DenseKit's writer recorded it (root attribute `densekit`), for weights-only files.
    package var headDescription: HeadDescription?
    package var namesRecovered = false
    /// The layer holding the backbone when it is nested in the user's model.
    package var nestedModel: String?

    package init(file: HDF5File, trustStoredNames: Bool = true) throws {
        kerasVersion = try file.stringAttribute("/", "keras_version")?.first
        if let json = try file.stringAttribute("/", "densekit")?.first {
            let subject = ImportSubject.entry(kind: "attribute", name: "densekit")
            guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
                let head = object["head"]
            else {
                throw ImportError.mismatch(
                    subject, expected: "a JSON object with \"head\"", found: "'\(json.prefix(40))'")
            }
            headDescription = try HeadDescription(
                jsonObject: head, subject: .entry(kind: "attribute", name: "densekit.head"))
        }
        if let config = try file.stringAttribute("/", "model_config"), file.exists("model_weights") {
            layout = .fullModel
            modelConfig = config.first
            try readNamed(file, root: "model_weights")
        } else if try Self.splitAttribute(file, "/", "layer_names") != nil {
            layout = .weightsOnly
            try readNamed(file, root: "/")
        } else if file.exists("layers") {
            layout = .keras3Weights
            try readKeras3(file, trustStoredNames: trustStoredNames)
        } else {
            throw ImportError.structure(
                "HDF5 file holds no Keras model (no model_weights, layer_names or layers group)")
        }
    }

    private mutating func readNamed(_ file: HDF5File, root: String) throws {
        guard let names = try Self.splitAttribute(file, root, "layer_names") else {
            throw ImportError.malformed("'\(root)' has no layer_names attribute")
        }
        let prefix = root == "/" ? "" : root + "/"
        var seen = Set<String>()
        for layerName in names {
            guard seen.insert(layerName).inserted else {
                throw ImportError.malformed(.kerasLayer(layerName), problem: "is listed twice")
            }
            let group = prefix + layerName
            guard file.exists(group) else {
                throw ImportError.malformed(.kerasLayer(layerName), problem: "is listed but has no group")
            }
            let weightNames = try Self.splitAttribute(file, group, "weight_names") ?? []
            guard Set(weightNames).count == weightNames.count else {
                throw ImportError.malformed(.kerasLayer(layerName), problem: "lists a weight twice")
            }
            // A nested model (the backbone as one layer) lists its layers' weights as "<layer>/<weight>".
            let owners = weightNames.map { name in name.split(separator: "/").dropLast().joined(separator: "_") }
            let nested = Set(owners).count > 1
            if nested { try nest(layerName) }
            var pending: [(owner: String, tensors: [Tensor])] = []
            var position: [String: Int] = [:]
            for (weightName, owner) in zip(weightNames, owners) {
                let path = group + "/" + weightName
                guard file.exists(path) else {
                    throw ImportError.malformed(.kerasLayer(layerName), problem: "missing dataset '\(weightName)'")
                }
                guard let dataset = try file.floatDataset(path) else { continue }
                let tensor = Tensor(
                    name: weightName, shape: dataset.shape, storedDType: dataset.dtype, values: dataset.values)
                // Keras lists a nested model's trainable weights before its non-trainable ones (a BN's
                // moving statistics come after every kernel), so a layer's weights need not be adjacent.
                let key = nested ? owner : layerName.replacingOccurrences(of: "/", with: "_")
                if let index = position[key] {
                    pending[index].tensors.append(tensor)
                } else {
                    position[key] = pending.count
                    pending.append((key, [tensor]))
                }
            }
            if pending.isEmpty { pending = [(layerName.replacingOccurrences(of: "/", with: "_"), [])] }
            for (key, tensors) in pending {
                guard layers.updateValue(Layer(name: key, tensors: tensors), forKey: key) == nil else {
                    throw ImportError.malformed(.kerasLayer(key), problem: "is listed twice")
                }
                order.append(key)
                if tensors.first?.shape.count == 2 { denseLayers.append(key) }
            }
        }
    }

    /// Records a nested model (the backbone as one layer of the user's model); a second is refused.
    private mutating func nest(_ name: String) throws {
        if let nestedModel { throw KerasModelConfig.secondNestedModel(name, backbone: nestedModel) }
        nestedModel = name
    }

    private mutating func readKeras3(_ file: HDF5File, trustStoredNames: Bool) throws {
        var unnamed: [(key: String, tensors: [Tensor])] = []
        var dense: [(counter: Int, name: String)] = []
        // A nested model (the backbone as one layer) is a group with its own `layers`; its layers
        // are read in its place.
        var groups: [String] = []
        for key in try file.children("layers") {
            let inner = "layers/\(key)/layers"
            if file.exists(inner) {
                try nest(key)
                groups += try file.children(inner).map { "\(inner)/\($0)" }
                order += try file.children(inner)
            } else {
                groups.append("layers/\(key)")
                order.append(key)
            }
        }
        for group in groups {
            let key = String(group.split(separator: "/").last ?? "")
            let vars = "\(group)/vars"
            guard file.exists(vars) else { continue }
            let indices = try file.children(vars).compactMap(Int.init).sorted()
            let tensors = try indices.compactMap { i -> Tensor? in
                guard let dataset = try file.floatDataset("\(vars)/\(i)") else { return nil }
                return Tensor(
                    name: "\(vars)/\(i)", shape: dataset.shape, storedDType: dataset.dtype, values: dataset.values)
            }
            if trustStoredNames, let name = try file.stringAttribute(vars, "name")?.first, !name.isEmpty {
                guard layers[name] == nil else {
                    throw ImportError.malformed(.kerasLayer(name), problem: "two layers have this name")
                }
                layers[name] = Layer(name: name, tensors: tensors)
                if let counter = KerasLayerNames.counter(key, of: "dense") { dense.append((counter, name)) }
            } else if !tensors.isEmpty {
                unnamed.append((key, tensors))
            }
        }
        if !unnamed.isEmpty {
            let recovered = try KerasLayerNames.recover(unnamed)
            for (name, tensors) in recovered.layers { layers[name] = Layer(name: name, tensors: tensors) }
            dense += recovered.dense.enumerated().map { ($0.offset, $0.element) }
            namesRecovered = true
        }
        // Keras numbers each class's layers in creation order: dense, dense_1, ...
        denseLayers = dense.sorted { $0.counter < $1.counter }.map(\.name)
    }

    /// A string-list attribute, or its chunks `name0`, `name1`, ... that Keras writes instead when
    /// the list exceeds HDF5's 64 KiB attribute limit; nil when neither exists.
    package static func splitAttribute(_ file: HDF5File, _ object: String, _ name: String) throws -> [String]? {
        if let whole = try file.stringAttribute(object, name) { return whole }
        var chunks: [String] = []
        var index = 0
        while let chunk = try file.stringAttribute(object, "\(name)\(index)") {
            chunks += chunk
            index += 1
        }
        return index > 0 ? chunks : nil
    }

    /// Parameters and bytes the file stores, and its tensor count.
    package var stored: (parameters: Int, bytes: Int, tensors: Int) {
        let all = layers.values.flatMap(\.tensors)
        return (all.reduce(0) { $0 + $1.count }, all.reduce(0) { $0 + $1.storedBytes }, all.count)
    }
}

/// Recovers keras.applications.densenet layer names from a `.weights.h5` that stores none.
///
/// Keras numbers layers per class in creation order (conv2d, conv2d_1, ...), and DenseNet creates
/// them as: stem conv and BN; per dense layer BN, conv 1x1, BN, conv 3x3; per transition BN, conv
/// 1x1; the final BN; the classifier. A 1x1 conv followed by a 3x3 conv is a dense layer's
/// bottleneck; a 1x1 conv followed by another 1x1 conv (or by nothing) is a transition.
package enum KerasLayerNames {
    /// The counter of a class-counter key (`dense` is 0, `dense_3` is 3), or nil for another class.
    package static func counter(_ key: String, of prefix: String) -> Int? {
        if key == prefix { return 0 }
        guard key.hasPrefix(prefix + "_") else { return nil }
        return Int(key.dropFirst(prefix.count + 1))
    }

    /// The layers under their recovered names, and the dense layers' names in creation order: one
    /// dense layer is keras.applications' classifier, `predictions`; several keep their keys.
    package static func recover(_ layers: [(key: String, tensors: [Tensor])]) throws -> (
        layers: [String: [Tensor]], dense: [String]
    ) {
        func ordered(_ prefix: String) -> [(key: String, tensors: [Tensor])] {
            layers.compactMap { entry in counter(entry.key, of: prefix).map { ($0, entry) } }.sorted { $0.0 < $1.0 }
                .map(\.1)
        }
        let convs = ordered("conv2d").map(\.tensors)
        let norms = ordered("batch_normalization").map(\.tensors)
        let dense = ordered("dense")
        guard convs.count >= 2, norms.count >= 2 else {
            throw ImportError.structure("cannot recover layer names: expected conv2d and batch_normalization layers")
        }
        func kernel(_ tensors: [Tensor]) -> Int { tensors.first.map { $0.shape.first ?? 0 } ?? 0 }
        let denseNames = dense.count == 1 ? ["predictions"] : dense.map(\.key)
        var names: [String: [Tensor]] = ["conv1_conv": convs[0], "conv1_bn": norms[0]]
        for (name, entry) in zip(denseNames, dense) { names[name] = entry.tensors }
        var ci = 1
        var bi = 1
        var block = 2
        var layer = 1
        while ci < convs.count {
            guard kernel(convs[ci]) == 1 else {
                throw ImportError.structure("cannot recover layer names: conv2d #\(ci) is not 1x1")
            }
            if ci + 1 < convs.count && kernel(convs[ci + 1]) == 3 {
                guard bi + 1 < norms.count else {
                    throw ImportError.structure("cannot recover layer names: too few BatchNorms")
                }
                let base = "conv\(block)_block\(layer)"
                names[base + "_0_bn"] = norms[bi]
                names[base + "_1_conv"] = convs[ci]
                names[base + "_1_bn"] = norms[bi + 1]
                names[base + "_2_conv"] = convs[ci + 1]
                ci += 2
                bi += 2
                layer += 1
            } else {
                guard bi < norms.count else {
                    throw ImportError.structure("cannot recover layer names: too few BatchNorms")
                }
                names["pool\(block)_bn"] = norms[bi]
                names["pool\(block)_conv"] = convs[ci]
                ci += 1
                bi += 1
                block += 1
                layer = 1
            }
        }
        guard bi == norms.count - 1 else {
            throw ImportError.structure("cannot recover layer names: \(norms.count - bi) BatchNorms left over")
        }
        names["bn"] = norms[bi]
        return (names, denseNames)
    }
}
