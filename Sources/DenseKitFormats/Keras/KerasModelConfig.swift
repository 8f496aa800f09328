import DenseKitGraph
import Foundation

/// What DenseKit reads from a Keras model config (the `model_config` attribute of a full-model
/// `.h5`, or `config.json` of a `.keras` archive): per-layer geometry, BN epsilons, the classifier's
/// activation and the input shape. Weights-only files have none; the importer then assumes
/// keras.applications.densenet's choices and says so.
package struct KerasModelConfig {
    package struct Layer {
        package var className: String
        /// Per-axis values as the config spells them (an int is both axes).
        package var strides: [Int]?
        package var kernelSize: [Int]?
        package var dilation: [Int]?
        package var groups: Int?
        package var padding: String?
        package var poolSize: [Int]?
        package var epsilon: Float?
        package var activation: String?
        /// Zero padding applied by a ZeroPadding2D layer directly before this one: top, left, bottom, right.
        package var zeroPadding: [Int]?
        /// The layers whose outputs this one reads (Keras 2's and Keras 3's inbound_nodes).
        package var inbound: [String] = []
        /// Rescaling's `scale` and `offset`; Normalization's `mean` and `variance` when given to the
        /// constructor (adapted ones are weights), and `invert`. A number or a list, flattened.
        package var scale: [Double]?
        package var offset: [Double]?
        package var mean: [Double]?
        package var variance: [Double]?
        package var invert: Bool?
    }

    package var layers: [String: Layer] = [:]
    /// Every layer's name in the config's (topological) order, ZeroPadding2D and InputLayer included.
    package var order: [String] = []
    /// The layers whose outputs are the model's.
    package var outputs: [String] = []
    package static let maximumPadding = 1 << 16
    /// Input (height, width, channels) where the config fixes them.
    package var inputShape: [Int?] = []

    /// The nested model's layer name when the backbone is one layer of the user's model
    /// (`Sequential([DenseNet121(include_top=False), ...])`); its layers are listed here in its place.
    package var nestedModel: String?
    /// The model's InputLayer (a Sequential may list none).
    package var inputLayer: String?

    package init(json: String) throws {
        guard let data = json.data(using: .utf8),
            let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let config = root["config"] as? [String: Any],
            let layerList = config["layers"] as? [[String: Any]]
        else {
            throw ImportError.malformed("the Keras model config is not valid JSON with config.layers")
        }
        try self.init(model: config, layerList: layerList, sequential: root["class_name"] as? String == "Sequential")
    }

    /// A model's layers; `feeding` names what a nested model's input layer stands for in the outer model.
    private init(model config: [String: Any], layerList: [[String: Any]], sequential: Bool, feeding: [String]? = nil)
        throws
    {
        var aliases: [String: [String]] = [:]
        func resolved(_ names: [String]) -> [String] { names.flatMap { aliases[$0] ?? [$0] } }
        var previous: [String] = feeding ?? []
        var pendingPad: [Int]? = nil
        for entry in layerList {
            guard let className = entry["class_name"] as? String, let layerConfig = entry["config"] as? [String: Any],
                let rawName = layerConfig["name"] as? String
            else { continue }
            let name = rawName.replacingOccurrences(of: "/", with: "_")
            // A Sequential lists no inbound nodes: each layer reads the one before it.
            let inbound = sequential ? previous : resolved(Self.layerNames(entry["inbound_nodes"]))
            if className == "InputLayer" {
                if let feeding {
                    aliases[name] = feeding
                } else {
                    let shape = (layerConfig["batch_input_shape"] ?? layerConfig["batch_shape"]) as? [Any] ?? []
                    if inputShape.isEmpty { inputShape = shape.dropFirst().map { $0 as? Int } }
                    if inputLayer == nil { inputLayer = name }
                    order.append(name)
                }
                previous = aliases[name] ?? [name]
                continue
            }
            if let innerList = layerConfig["layers"] as? [[String: Any]] {
                previous = try nest(
                    name, innerList, layerConfig, sequential: className == "Sequential", inbound: inbound)
                aliases[name] = previous
                continue
            }
            order.append(name)
            previous = [name]
            if className == "ZeroPadding2D" {
                pendingPad = Self.padding(layerConfig["padding"])
                // Padding is added to the conv's own; bounded here so that no sum can overflow.
                if let pad = pendingPad, !pad.allSatisfy({ (0...Self.maximumPadding).contains($0) }) {
                    throw ImportError.mismatch(
                        .kerasLayer(name), expected: "padding from 0 to \(Self.maximumPadding)", found: "\(pad)")
                }
                continue
            }
            var layer = Layer(className: className)
            layer.strides = Self.axes(layerConfig["strides"])
            layer.kernelSize = Self.axes(layerConfig["kernel_size"])
            layer.dilation = Self.axes(layerConfig["dilation_rate"])
            layer.groups = layerConfig["groups"] as? Int
            layer.padding = layerConfig["padding"] as? String
            layer.poolSize = Self.axes(layerConfig["pool_size"])
            layer.epsilon = (layerConfig["epsilon"] as? Double).map(Float.init)
            layer.activation = layerConfig["activation"] as? String
            layer.zeroPadding = pendingPad
            layer.scale = Self.numbers(layerConfig["scale"])
            layer.offset = Self.numbers(layerConfig["offset"])
            layer.mean = Self.numbers(layerConfig["mean"])
            layer.variance = Self.numbers(layerConfig["variance"])
            layer.invert = layerConfig["invert"] as? Bool
            layer.inbound = inbound
            pendingPad = nil
            guard layers.updateValue(layer, forKey: name) == nil else {
                throw ImportError.malformed(.kerasLayer(name), problem: "is named twice in the model config")
            }
        }
        outputs = sequential ? previous : resolved(Self.layerNames(config["output_layers"]))
    }

    /// Lists a nested model's layers in its place and returns the layers its outputs are.
    private mutating func nest(
        _ name: String, _ innerList: [[String: Any]], _ innerConfig: [String: Any], sequential: Bool,
        inbound: [String]
    ) throws -> [String] {
        if let nestedModel { throw Self.secondNestedModel(name, backbone: nestedModel) }
        nestedModel = name
        let inner = try KerasModelConfig(
            model: innerConfig, layerList: innerList, sequential: sequential, feeding: inbound)
        if let clash = inner.order.first(where: { layers[$0] != nil || order.contains($0) }) {
            throw ImportError.mismatch(
                .kerasLayer(name), expected: "layer names of its own", found: "'\(clash)', also a layer outside it")
        }
        layers.merge(inner.layers) { first, _ in first }
        order += inner.order
        if inputShape.isEmpty { inputShape = inner.inputShape }
        return inner.outputs
    }

    /// The layer names a Keras 2 node list ([[["name", 0, 0, {}]]]) or a Keras 3 one (keras_history
    /// ["name", 0, 0] inside the args) refers to, in order.
    package static func layerNames(_ value: Any?) -> [String] {
        if let history = (value as? [String: Any])?["keras_history"] as? [Any], let name = history.first as? String {
            return [name.replacingOccurrences(of: "/", with: "_")]
        }
        if let list = value as? [Any] {
            if let name = list.first as? String, list.count >= 3, list[1] is Int {
                return [name.replacingOccurrences(of: "/", with: "_")]
            }
            return list.flatMap { layerNames($0) }
        }
        if let object = value as? [String: Any] { return object.values.flatMap { layerNames($0) } }
        return []
    }

    /// The refusal of a second nested model (config and weights alike): DenseKit reads one backbone.
    package static func secondNestedModel(_ name: String, backbone: String) -> ImportError {
        .mismatch(
            .kerasLayer(name), expected: "one nested model, the backbone '\(backbone)'", found: "a second nested model")
    }

    /// A number or a (nested) list of numbers, flattened; nil for anything else (null included).
    private static func numbers(_ value: Any?) -> [Double]? {
        if let number = value as? Int { return [Double(number)] }
        if let number = value as? Double { return [number] }
        guard let list = value as? [Any] else { return nil }
        var flat: [Double] = []
        for item in list {
            guard let inner = numbers(item) else { return nil }
            flat += inner
        }
        return flat
    }

    /// An int or a list of ints, as Keras spells strides and sizes.
    private static func axes(_ value: Any?) -> [Int]? {
        if let side = value as? Int { return [side, side] }
        return value as? [Int]
    }

    /// ZeroPadding2D's `padding`: n, (h, w) or ((top, bottom), (left, right)).
    private static func padding(_ value: Any?) -> [Int]? {
        if let side = value as? Int { return [side, side, side, side] }
        guard let pair = value as? [Any], pair.count == 2 else { return nil }
        if let vertical = pair[0] as? Int, let horizontal = pair[1] as? Int {
            return [vertical, horizontal, vertical, horizontal]
        }
        if let hs = pair[0] as? [Int], let ws = pair[1] as? [Int], hs.count == 2, ws.count == 2 {
            return [hs[0], ws[0], hs[1], ws[1]]
        }
        return nil
    }
}
