import DenseKitGraph
import Foundation

/// Writes a safetensors state_dict under torchvision's names (`TorchvisionStateDict`), loadable with
/// `model.load_state_dict(safetensors.torch.load_file(path), strict=True)`.
///
/// File layout (huggingface/safetensors): an 8-byte little-endian header length, a JSON header
/// `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}` padded
/// with spaces to a multiple of 8 bytes, then the tensors' bytes, contiguous. What a state_dict
/// cannot hold goes in `__metadata__`: the head (`densekit.head`, read back by DenseKit), the
/// provenance, and `format: pt`.
public struct SafetensorsModelWriter: ModelWriter {
    public let format = "safetensors"
    package static let epsilon: Float = 1e-5

    public init() {}

    public func prepare(_ net: DenseNet, dtype: DType) throws -> (net: DenseNet, conventions: [Convention]) {
        var (prepared, conventions) = try FixedLayoutPreparation(
            format: format, framework: "torchvision", epsilon: Self.epsilon, layout: .nchw
        ).prepare(net)
        let head = net.head
        let recorded = "recorded in __metadata__ as densekit.head, which DenseKit reads back"
        switch head.activation {
        case .linear, .unknown: break
        default:
            conventions.append(
                Convention(
                    .drops, "activation",
                    """
                    a state_dict stores no activations: torchvision's DenseNet outputs the classifier's logits \
                    where the source applied \(head.activation.rawValue) (\(recorded))
                    """
                ))
        }
        if head.dense.count > 1 {
            conventions.append(
                Convention(
                    .changes, "classifier",
                    """
                    \(head.dense.count) dense layers as a Sequential: build model.classifier = \
                    \(TorchvisionStateDict.classifierModule(head)) before loading (\(recorded))
                    """
                ))
        } else if head.dense.isEmpty {
            conventions.append(
                Convention(
                    .drops, "classifier",
                    """
                    the source has none: load into a model with model.classifier = nn.Identity() (its forward \
                    then outputs the average-pooled features)
                    """
                ))
        }
        switch head.pool {
        case .max:
            conventions.append(
                Convention(
                    .changes, "pool",
                    """
                    torchvision's forward averages the final features; the source max-pools (\(recorded)): apply \
                    F.adaptive_max_pool2d to F.relu(model.features(x)) yourself
                    """
                ))
        case nil:
            conventions.append(
                Convention(
                    .changes, "pool",
                    """
                    the source outputs the final feature map; torchvision's forward pools it: use \
                    F.relu(model.features(x))
                    """
                ))
        case .average: break
        }
        let built = TorchvisionStateDict.constructor(prepared)
        if let timm = TorchvisionStateDict.timmConstructor(prepared) {
            let blur = prepared.stem.blur == nil ? "" : " and blur pool"
            conventions.append(
                Convention(
                    .changes, "model",
                    """
                    stem: torchvision.models.DenseNet cannot build timm's deep stem\(blur); the keys are timm's own \
                    (features.conv0 to conv2, norm0 to norm2, then torchvision's names): load into \(timm)
                    """))
        } else if let call = built.call {
            // torchvision builds a 3-channel stem; a 1-channel (X-ray, CT) or 4-channel one replaces it.
            let stem = prepared.stem.conv
            let channels =
                stem.inChannels == 3
                ? ""
                : " with model.features.conv0 = nn.Conv2d(\(stem.inChannels), \(stem.outChannels), kernel_size=7, "
                    + "stride=2, padding=3, bias=False) (\(stem.inChannels) input channel"
                    + (stem.inChannels == 1 ? ")" : "s)")
            conventions.append(
                Convention(
                    .changes, "model",
                    "load into \(call)" + (head.dense.count == 1 ? "" : " with the classifier above") + channels))
        } else if let reason = built.reason {
            conventions.append(
                Convention(
                    .changes, "model",
                    """
                    torchvision.models.DenseNet cannot build this model (\(reason)): the keys follow its names, \
                    for a module of your own
                    """
                ))
        }
        return (prepared, conventions)
    }

    public func encode(_ net: DenseNet, dtype: DType, provenance: Provenance) throws -> Data {
        let entries = TorchvisionStateDict.entries(net)
        var header: [String: Any] = [:]
        var offset = 0
        var payloads: [(Tensor?, DType)] = []
        for (key, value) in entries {
            switch value {
            case .float(let float):
                let stored: DType = float.shape.count >= 2 ? dtype : .f32
                header[key] = [
                    "dtype": Self.name(stored), "shape": float.shape,
                    "data_offsets": [offset, offset + float.count * stored.size],
                ]
                offset += float.count * stored.size
                payloads.append((float, stored))
            case .batchesTracked:
                header[key] = ["dtype": "I64", "shape": [Int](), "data_offsets": [offset, offset + 8]]
                offset += 8
                payloads.append((nil, .f32))
            }
        }
        header["__metadata__"] = [
            "format": "pt",
            SafetensorsReader.headMetadataKey: HeadDescription(net.head).jsonString,
            "densekit.version": provenance.densekitVersion,
            "densekit.source_file": provenance.sourceFile,
            "densekit.source_sha256": provenance.sourceSHA256,
            "densekit.source_format": provenance.sourceFormat,
            "densekit.converted_at": provenance.convertedAt,
        ].merging(
            net.stem.deep.isEmpty ? [:] : [SafetensorsReader.blurPoolMetadataKey: "\(net.stem.blur != nil)"]
        ) { $1 }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        json.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: (8 - json.count % 8) % 8))
        var file = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { file.append(contentsOf: $0) }
        file.append(json)
        for (tensor, stored) in payloads {
            if let tensor { file.append(StoredFloat(stored).encode(tensor)) } else { file.append(Data(count: 8)) }
        }
        return file
    }

    package static func name(_ dtype: DType) -> String {
        switch dtype {
        case .f32: return "F32"
        case .f16: return "F16"
        case .bf16: return "BF16"
        }
    }
}
