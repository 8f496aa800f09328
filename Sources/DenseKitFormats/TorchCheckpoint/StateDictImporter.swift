import DenseKitGraph
import Foundation

/// Builds the canonical graph from a PyTorch state_dict (from safetensors or a `.pth`), whose keys
/// and shapes are all it has: a state_dict stores no config.
///
/// Keys are torchvision's (`features.conv0`, `features.norm0`, `features.denseblock<b>.denselayer<i>.
/// norm1/conv1/norm2/conv2`, `features.transition<t>.norm/conv`, `features.norm5`, `classifier`),
/// also in the 2017 spelling (`norm.1`, `conv.2`, which torchvision's own loader rewrites), behind
/// any prefix (`module.` of nn.DataParallel, a wrapper's attribute such as `module.densenet121.`),
/// with the classifier as `classifier` or inside a Sequential (`classifier.0`). MONAI's DenseNets
/// (`spatial_dims=2`) read the same way: their dense layers hold their modules in `layers`
/// (`denselayer1.layers.norm1`) and their head is `class_layers.out` after ReLU, an adaptive average
/// pool and a flatten (torchvision's head); a 3-D one (5-D conv weights) is refused. Convolutions follow
/// torchvision: a 7x7 stem is stride 2 pad 3 then BN, ReLU and a 3x3/2 max pool; a 3x3 stem (CIFAR)
/// is stride 1 pad 1; dense-layer 3x3 convs pad 1; transitions average-pool 2x2. BatchNorm epsilon is
/// torchvision's 1e-5. The input is NCHW of any size.
public enum StateDictImporter {
    /// A tensor as a checkpoint stores it: float ones as `Tensor`, integer ones (num_batches_tracked) by shape only.
    public enum Entry: Sendable {
        case float(Tensor)
        case integer(shape: [Int])
    }

    package static let epsilon: Float = 1e-5

    /// `entries` by key; `source` describes the file (its notes are extended here). `description`:
    /// the head a DenseKit-written file records beside the weights (pool and activations), which a
    /// state_dict cannot hold. `blurPool`: whether the stem has timm's `BlurPool2d`, when the file says
    /// (a pickled module tree names its classes; a DenseKit-written file records it); nil when it cannot.
    public static func build(
        _ entries: [String: Entry], source: ModelSource, head description: HeadDescription? = nil,
        blurPool: Bool? = nil
    ) throws -> DenseNet {
        let keys = try canonicalKeys(entries)
        var used = Set<String>()
        func tensor(_ key: String, rank: Int? = nil) throws -> Tensor {
            guard let original = keys[key], case .float(let found)? = entries[original] else {
                throw ImportError.mismatch(
                    .part("state_dict"), expected: "a float tensor '\(key)'",
                    found: keys[key] == nil ? "no such key" : "an integer tensor")
            }
            if rank == 4, found.shape.count == 5 {
                throw ImportError.unsupported(
                    .tensor(original),
                    problem: "a 5-D conv weight, shape \(found.shape): 3-D DenseNets (MONAI's spatial_dims=3) "
                        + "are not supported, only 2-D ones")
            }
            if let rank, found.shape.count != rank {
                throw ImportError.mismatch(.tensor(original), expected: "\(rank) dims", found: "shape \(found.shape)")
            }
            used.insert(key)
            return found
        }
        func has(_ key: String) -> Bool { keys[key] != nil }
        func norm(_ prefix: String) throws -> BatchNorm {
            let parts = try BatchNorm.torchNames.map { try tensor("\(prefix).\($0)", rank: 1) }
            if has(prefix + ".num_batches_tracked") { used.insert(prefix + ".num_batches_tracked") }
            return BatchNorm(gamma: parts[0], beta: parts[1], mean: parts[2], variance: parts[3], epsilon: epsilon)
        }
        /// torchvision's convs: padded by half the kernel ("same" at stride 1) unless `pad` says otherwise.
        func conv(_ prefix: String, stride: Int = 1, pad: Int? = nil) throws -> Conv2D {
            let kernel = try tensor(prefix + ".weight", rank: 4)
            let pad = pad ?? kernel.shape[2] / 2
            let bias = has(prefix + ".bias") ? try tensor(prefix + ".bias", rank: 1) : nil
            return Conv2D(weight: kernel, bias: bias, stride: stride, pads: [pad, pad, pad, pad])
        }

        // Stem: torchvision's, or timm's deep one (`conv0`..`conv2`, each 3x3 with its BN-ReLU, the
        // first at stride 2) before the same max pool.
        let stemWeight = try tensor("features.conv0.weight", rank: 4)
        let deepStem = stemWeight.shape[2] == 3 && has("features.conv1.weight") && has("features.norm1.weight")
        let imagenet = stemWeight.shape[2] == 7 || deepStem
        let stemConv = try conv("features.conv0", stride: imagenet ? 2 : 1)
        let stemNorm = has("features.norm0.weight") ? try norm("features.norm0") : nil
        var deep: [StemConvolution] = []
        while deepStem, has("features.conv\(deep.count + 1).weight") {
            let name = "features.conv\(deep.count + 1)"
            deep.append(StemConvolution(conv: try conv(name), norm: try norm("features.norm\(deep.count + 1)")))
        }
        var stem = Stem(
            conv: stemConv, norm: stemNorm, relu: stemNorm != nil, deep: deep,
            pool: imagenet ? Pool2D(kind: .max, kernel: 3, stride: 2, pads: [1, 1, 1, 1]) : nil)

        // Blocks and transitions.
        var blocks: [DenseBlock] = []
        var transitions: [Transition] = []
        var block = 1
        while has("features.denseblock\(block).denselayer1.norm1.weight") {
            var layers: [DenseLayer] = []
            var index = 1
            while has("features.denseblock\(block).denselayer\(index).norm1.weight") {
                let prefix = "features.denseblock\(block).denselayer\(index)"
                let n1 = try norm(prefix + ".norm1")
                let first = try conv(prefix + ".conv1")
                if has(prefix + ".conv2.weight") {
                    let second = try conv(prefix + ".conv2")
                    layers.append(
                        DenseLayer(
                            norm: n1, bottleneck: Bottleneck(conv: first, norm: try norm(prefix + ".norm2")),
                            conv: second))
                } else {
                    layers.append(DenseLayer(norm: n1, bottleneck: nil, conv: first))
                }
                index += 1
            }
            blocks.append(DenseBlock(layers: layers))
            let transitionPrefix = "features.transition\(block)"
            if has(transitionPrefix + ".norm.weight") {
                transitions.append(
                    Transition(
                        norm: try norm(transitionPrefix + ".norm"), conv: try conv(transitionPrefix + ".conv", pad: 0),
                        pool: Pool2D(kind: .average, kernel: 2, stride: 2)))
            }
            block += 1
        }
        guard !blocks.isEmpty else {
            throw ImportError.mismatch(
                .part("state_dict"), expected: "dense layers 'features.denseblock1.denselayer1.*'", found: "none")
        }
        var notes = source.notes
        if deepStem {
            let blurred = blurPool ?? isBlur121d(stem: stem, blocks: blocks)
            if blurred {
                stem.makeAntiAliased()
                // TorchScript keeps the blur's filter (a buffer torch.save leaves out): it must be the fixed one.
                if has("features.pool0.1.filt") { try checkBlurFilter(try tensor("features.pool0.1.filt", rank: 4)) }
            }
            notes.append(deepStemNote(blurred: blurred, known: blurPool != nil))
        }

        // Head: norm5, then the classifier (one Linear, or Linears inside a Sequential).
        let headNorm = try norm("features.norm5")
        if keys.values.contains(where: { $0.contains(".layers.") || $0.contains("class_layers.") }) {
            notes.append("MONAI's DenseNet keys ('denselayer<i>.layers.*', 'class_layers.out')")
        }
        notes.append("BatchNorm epsilon assumed 1e-5 (torchvision's): a state_dict stores none")
        var dense: [Head.Dense] = []
        func linear(_ prefix: String) throws -> Linear {
            Linear(
                weight: try tensor(prefix + ".weight", rank: 2),
                bias: has(prefix + ".bias") ? try tensor(prefix + ".bias", rank: 1) : nil)
        }
        let indices = Set(
            keys.keys.compactMap { key -> Int? in
                guard key.hasPrefix("classifier."),
                    let index = Int(key.dropFirst("classifier.".count).prefix { $0 != "." })
                else { return nil }
                return index
            }
        ).sorted()
        var head: Head
        if let description {
            let linears =
                has("classifier.weight")
                ? [try linear("classifier")] : try indices.map { try linear("classifier.\($0)") }
            head = try description.head(norm: headNorm, linears: linears, subject: .part("classifier"))
            notes.append("head as recorded by DenseKit in the file's metadata: \(head.summary)")
        } else {
            if has("classifier.weight") {
                dense.append(Head.Dense(try linear("classifier"), .linear))
                notes.append("a state_dict stores no activations: the output is the classifier's values (logits)")
            } else {
                guard indices.count <= 1 else {
                    throw ImportError.mismatch(
                        .part("classifier"),
                        expected:
                            "one Linear layer (a state_dict stores no activations, so the one between two is unknown)",
                        found: "Linear layers at \(indices.map { "classifier.\($0)" }.joined(separator: ", "))")
                }
                if let index = indices.first {
                    dense.append(Head.Dense(try linear("classifier.\(index)"), .unknown))
                    notes.append(
                        """
                        the classifier is inside a Sequential ('classifier.\(index)'): its activation is not stored, \
                        so the output is the linear layer's values
                        """
                    )
                } else {
                    notes.append("no classifier in the state_dict: the output is the pooled features")
                }
            }
            head = Head(norm: headNorm, pool: .average, dense: dense)
        }

        let unknown = keys.keys.filter { !used.contains($0) }.sorted()
        guard unknown.isEmpty else {
            let shown = unknown.prefix(5).map { "'\(keys[$0] ?? $0)'" }.joined(separator: ", ")
            throw ImportError.mismatch(
                .part("state_dict"),
                expected: "only DenseNet keys (features.*, and classifier.* or MONAI's class_layers.out.*)",
                found:
                    """
                    \(unknown.count) other\(unknown.count == 1 ? "" : "s"): \
                    \(shown)\(unknown.count > 5 ? ", ..." : "")
                    """
            )
        }
        var described = source
        described.notes = notes
        let input = InputSpec(
            name: "input", layout: .nchw, channels: stemConv.inChannels, height: nil, width: nil, batch: nil)
        return DenseNet(
            source: described, input: input, stem: stem, blocks: blocks, transitions: transitions, head: head)
    }

    /// Canonical key (torchvision's current spelling, no prefix) -> the key in the file.
    package static func canonicalKeys(_ entries: [String: Entry]) throws -> [String: String] {
        let anchor = "features.conv0.weight"
        guard
            let stemKey = entries.keys.filter({ $0 == anchor || $0.hasSuffix("." + anchor) }).min(by: {
                $0.count < $1.count
            })
        else {
            let sample = entries.keys.sorted().prefix(4).map { "'\($0)'" }.joined(separator: ", ")
            throw ImportError.mismatch(
                .part("state_dict"),
                expected: "a torchvision DenseNet's keys, first '\(anchor)' (after any prefix such as 'module.')",
                found: entries.isEmpty ? "no tensors" : sample + (entries.count > 4 ? ", ..." : ""))
        }
        let prefix = String(stemKey.dropLast(anchor.count))
        var keys: [String: String] = [:]
        for key in entries.keys {
            guard key.hasPrefix(prefix) else {
                throw ImportError.mismatch(
                    .key(key), expected: "the prefix '\(prefix)' of '\(stemKey)'", found: "another")
            }
            let canonical = rewriteMONAI(rewrite2017(String(key.dropFirst(prefix.count))))
            guard keys[canonical] == nil else {
                throw ImportError.mismatch(
                    .key(key), expected: "one tensor per name", found: "'\(keys[canonical] ?? "")' too")
            }
            keys[canonical] = key
        }
        return keys
    }

    /// MONAI's names in torchvision's spelling: `denselayer1.layers.norm1.weight` ->
    /// `denselayer1.norm1.weight`, `class_layers.out.weight` -> `classifier.weight`.
    package static func rewriteMONAI(_ key: String) -> String {
        if key.hasPrefix("class_layers.out.") { return "classifier." + key.dropFirst("class_layers.out.".count) }
        let parts = key.split(separator: ".", omittingEmptySubsequences: false)
        guard let layers = parts.firstIndex(of: "layers"), layers > 0, parts[layers - 1].hasPrefix("denselayer")
        else { return key }
        return (parts[..<layers] + parts[(layers + 1)...]).joined(separator: ".")
    }

    /// torchvision's rewrite of the 2017 names: `denselayer1.norm.1.weight` -> `denselayer1.norm1.weight`.
    package static func rewrite2017(_ key: String) -> String {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        var out: [String] = []
        var position = 0
        while position < parts.count {
            if position + 2 < parts.count, ["norm", "relu", "conv"].contains(parts[position]),
                parts[position + 1] == "1" || parts[position + 1] == "2",
                out.last?.hasPrefix("denselayer") == true
            {
                out.append(parts[position] + parts[position + 1])
                position += 2
            } else {
                out.append(parts[position])
                position += 1
            }
        }
        return out.joined(separator: ".")
    }
}

extension StateDictImporter {
    /// Whether a deep-stem DenseNet whose file cannot say is timm's `densenetblur121d` (growth 32, a 64-filter
    /// stem, blocks of 6, 12, 24 and 16 layers), the one timm model with a blur pool; timm's other deep-stem
    /// model, `densenet264d`, has none.
    fileprivate static func isBlur121d(stem: Stem, blocks: [DenseBlock]) -> Bool {
        stem.outChannels == 64 && blocks.map(\.layers.count) == [6, 12, 24, 16]
            && blocks.allSatisfy { $0.layers.allSatisfy { $0.growth == 32 } }
    }

    /// timm's `BlurPool2d.filt` as a file holds it: [channels or 1, 1, 3, 3] of the binomial filter.
    fileprivate static func checkBlurFilter(_ filter: Tensor) throws {
        let expected = BlurPool2D(kernel: 3).filter
        let values = filter.values
        guard filter.shape.count == 4, filter.shape[1...] == [1, 3, 3],
            values.indices.allSatisfy({ values[$0] == expected[$0 % 9] })
        else {
            throw ImportError.mismatch(
                .tensor(filter.name), expected: "the blur pool's filter [1,2,1]x[1,2,1]/16 per channel",
                found: "shape \(filter.shape) with other values")
        }
    }

    fileprivate static func deepStemNote(blurred: Bool, known: Bool) -> String {
        let kind = "timm's deep stem ('features.conv0' to 'conv2', 3x3 convs with BN-ReLU)"
        if known {
            return kind
                + (blurred ? " with its blur pool (BlurPool2d), as the file says" : ", no blur pool, as the file says")
        }
        return kind
            + (blurred
                ? """
                ; a blur pool (BlurPool2d: max pool 3x3 stride 1, then [1,2,1]x[1,2,1]/16 stride 2, reflect pad 1) \
                is assumed after it, as in timm's densenetblur121d, whose architecture this is: a state_dict does \
                not store the blur's fixed filter
                """
                : "; no blur pool assumed (a state_dict does not store one; only timm's densenetblur121d has it)")
    }
}

extension Stem {
    /// timm's anti-aliased stem pool: the max pool at stride 1, then the blur at the pool's stride.
    package mutating func makeAntiAliased() {
        guard var maxPool = pool else { return }
        blur = BlurPool2D(kernel: 3, stride: maxPool.stride)
        maxPool.stride = 1
        pool = maxPool
    }
}
