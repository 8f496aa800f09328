import DenseKitGraph

/// Keras preprocessing layers in front of the backbone, as the canonical graph's input transform.
extension KerasImporter.Builder {
    /// The Rescaling and Normalization layers before the stem, in order, as one per-channel transform.
    func preprocessing(_ config: KerasModelConfig, channels: Int) throws -> InputTransform? {
        var transform: InputTransform? = nil
        var previous = config.inputLayer.map { [$0] } ?? []
        for name in config.order.prefix(while: { $0 != "conv1_conv" }) {
            guard let layer = config.layers[name], Self.preprocessingClasses.contains(layer.className) else {
                continue
            }
            let subject = ImportSubject.kerasLayer(name, className: layer.className)
            guard layer.inbound == previous else {
                throw ImportError.mismatch(
                    subject, expected: "inputs \(previous) (the input, or the preprocessing layer before it)",
                    found: "inputs \(layer.inbound)")
            }
            previous = [name]
            let step =
                layer.className == "Rescaling"
                ? try rescaling(name, layer, subject, channels: channels)
                : try normalization(name, layer, subject, channels: channels)
            transform = transform.map { $0.followed(by: step) } ?? step
        }
        return transform
    }

    static let preprocessingClasses: Set<String> = ["Rescaling", "Normalization"]

    /// Per-channel values: one, or one per channel.
    private static func perChannel(_ values: [Double], _ key: String, _ subject: ImportSubject, channels: Int)
        throws -> [Float]
    {
        guard values.count == 1 || values.count == channels else {
            throw ImportError.mismatch(
                subject, expected: "\(key) of one value or one per input channel (\(channels))",
                found: "\(values.count) values")
        }
        return values.map(Float.init)
    }

    /// Rescaling: x * scale + offset.
    private func rescaling(
        _ name: String, _ layer: KerasModelConfig.Layer, _ subject: ImportSubject, channels: Int
    ) throws -> InputTransform {
        guard let scale = layer.scale else {
            throw ImportError.mismatch(subject, expected: "a numeric scale", found: "none")
        }
        let values = try Self.perChannel(scale, "scale", subject, channels: channels)
        let offsets = try Self.perChannel(layer.offset ?? [0], "offset", subject, channels: channels)
        return InputTransform(
            scale: values, offset: offsets, channels: channels,
            origin: "Rescaling '\(name)' (scale \(scale.count == 1 ? "\(scale[0])" : "\(scale)"), "
                + "offset \(layer.offset.map { $0.count == 1 ? "\($0[0])" : "\($0)" } ?? "0"))")
    }

    /// Normalization: (x - mean) / max(sqrt(variance), 1e-7), Keras's epsilon; with invert,
    /// mean + x * max(sqrt(variance), 1e-7). Mean and variance from the config, or the adapted ones
    /// stored as the layer's weights.
    private func normalization(
        _ name: String, _ layer: KerasModelConfig.Layer, _ subject: ImportSubject, channels: Int
    ) throws -> InputTransform {
        var mean = layer.mean
        var variance = layer.variance
        if mean == nil || variance == nil, let stored = weights.layers[name], stored.tensors.count >= 2 {
            mean = stored.tensors[0].values.map(Double.init)
            variance = stored.tensors[1].values.map(Double.init)
        }
        guard let mean, let variance else {
            throw ImportError.mismatch(
                subject, expected: "a mean and a variance (in the config, or adapted and stored)", found: "none")
        }
        let means = try Self.perChannel(mean, "mean", subject, channels: channels)
        let variances = try Self.perChannel(variance, "variance", subject, channels: channels)
        if let (c, bad) = variances.enumerated().first(where: { !($0.element >= 0) }) {
            throw ImportError.mismatch(
                subject, expected: "variances of 0 or more",
                found: "\(bad)\(variances.count > 1 ? " (channel \(c))" : "")")
        }
        let deviations = variances.map { max($0.squareRoot(), 1e-7) }
        let invert = layer.invert ?? false
        let scale = deviations.map { invert ? $0 : 1 / $0 }
        let offset = zip(means, deviations).map { invert ? $0 : -$0 / $1 }
        return InputTransform(
            scale: scale, offset: offset, channels: channels,
            origin: "Normalization '\(name)'\(invert ? " (invert)" : "") (mean \(means), variance \(variances))")
    }
}
