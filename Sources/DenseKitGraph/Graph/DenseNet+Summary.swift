import Foundation

/// What `densekit inspect` shows: the recognised structure and what the file stores.
extension DenseNet {
    /// Distinct stored dtypes of the weights, e.g. ["f16", "f32"].
    public var storedDTypes: [String] {
        Array(Set(tensors.map(\.storedDType.rawValue))).sorted()
    }

    /// A JSON-ready description (keys documented in the README).
    public var summary: [String: Any] {
        var blockList: [[String: Any]] = []
        for block in blocks {
            blockList.append([
                "layers": block.layers.count,
                "inChannels": block.inChannels,
                "outChannels": block.outChannels,
                "growthRate": block.layers.first?.growth ?? 0,
                "bottleneckWidth": block.layers.first?.bottleneck?.conv.outChannels as Any? ?? NSNull(),
            ])
        }
        return [
            "file": source.path,
            "format": source.format.rawValue,
            "producer": source.producer,
            "opset": source.opset as Any? ?? NSNull(),
            "input": [
                "name": input.name, "layout": input.layout.rawValue,
                "shape": [
                    input.batch, input.layout == .nchw ? input.channels : input.height,
                    input.layout == .nchw ? input.height : input.width,
                    input.layout == .nchw ? input.width : input.channels,
                ].map { $0 as Any? ?? NSNull() },
            ] as [String: Any],
            "stem": [
                "kernel": stem.conv.kernel, "stride": stem.conv.stride, "outChannels": stem.outChannels,
                "batchNorm": stem.norm != nil ? "present" : stem.normFolded ? "folded" : "none",
                "maxPool": stem.pool != nil,
            ] as [String: Any],
            "blocks": blockList,
            "transitions": transitions.map { ["inChannels": $0.norm.channels, "outChannels": $0.conv.outChannels] },
            "head": head.report(classes: classes),
            "dtypes": storedDTypes,
            "tensors": source.storedTensors,
            "parameters": source.storedParameters,
            "bytes": source.storedBytes,
            "notes": source.notes,
        ]
    }
}

extension Head {
    /// The head as `inspect --json` and `verify --json` report it.
    public func report(classes: Int) -> [String: Any] {
        [
            "inFeatures": norm.channels, "classes": classes, "softmax": softmax,
            "pool": pool?.rawValue ?? NSNull(), "activation": activation.rawValue,
            "dense": dense.map {
                [
                    "inFeatures": $0.linear.inFeatures, "outFeatures": $0.linear.outFeatures,
                    "activation": $0.activation.rawValue,
                ]
            },
            "description": summary,
        ]
    }
}
