/// Checks a recognised DenseNet against the paper's architectures and names every deviation by layer.
public struct Verifier {
    public struct Report: Sendable {
        /// The architecture checked against (the requested one, or the closest).
        public var spec: ArchitectureSpec
        public var deviations: [Deviation]
        public var parameters: ParameterCount
        public var storedParameters: Int
        public var growthRate: Int
        public var blocks: [Int]
        /// theta of the first transition (out / in), or nil without transitions.
        public var compression: Double?
        public var bottleneck: Bool
        public var classes: Int
        /// Distinct BatchNorm epsilons in the file.
        public var epsilons: [Float]
        /// The head as the file has it: reported, never a deviation.
        public var head: Head
        /// Channels of the input (3 for RGB; 1 for an X-ray or CT model, 4 with another band): reported,
        /// never a deviation, like the head: the stem's first conv is the only weight they change.
        public var inputChannels: Int
        /// The input size the file declares (nil where it leaves it open), and the map the head pools
        /// at that size (or at the architecture's own input size). Another size than the paper's is no
        /// deviation: a DenseNet is convolutional up to its global pool.
        public var inputSize: FeatureMapSizes.Size?
        public var finalMapSize: FeatureMapSizes.Size?

        public var matches: Bool { deviations.isEmpty }
    }

    public init() {}

    /// Verifies against `name`, or against every known architecture, keeping the closest.
    public func verify(_ net: DenseNet, against name: String? = nil) throws -> Report {
        let candidates: [ArchitectureSpec]
        if let name {
            guard let spec = ArchitectureSpec.named(name) else {
                throw VerifyError.unknownArchitecture(name, known: ArchitectureSpec.all.map(\.name))
            }
            candidates = [spec]
        } else {
            candidates = ArchitectureSpec.all
        }
        let weightFindings = weightDeviations(net)
        // The closest as a person would name it: the same shape first (stem kind, number of blocks,
        // layers per block), then the fewest deviations, then the earlier in the contract's list.
        let scored = candidates.map {
            (spec: $0, shape: shapeDifferences(net, $0), deviations: grouped(structuralDeviations(net, $0), net))
        }
        guard
            let chosen = scored.min(by: {
                ($0.shape.stem, $0.shape.blocks, $0.shape.layers, $0.deviations.count)
                    < ($1.shape.stem, $1.shape.blocks, $1.shape.layers, $1.deviations.count)
            })
        else {
            throw VerifyError.unknownArchitecture(name ?? "", known: [])
        }
        var eps: [Float] = []
        for norm in allNorms(net) where !eps.contains(norm.epsilon) { eps.append(norm.epsilon) }
        let compression = net.transitions.first.map { Double($0.conv.outChannels) / Double($0.norm.channels) }
        return Report(
            spec: chosen.spec, deviations: chosen.deviations + weightFindings,
            parameters: net.parameterCount, storedParameters: net.source.storedParameters,
            growthRate: net.blocks.first?.layers.first?.growth ?? 0,
            blocks: net.blocks.map(\.layers.count), compression: compression,
            bottleneck: net.blocks.contains { $0.layers.contains { $0.bottleneck != nil } },
            classes: net.classes, epsilons: eps, head: net.head, inputChannels: net.stem.conv.inChannels,
            inputSize: net.input.height.flatMap { h in net.input.width.map { FeatureMapSizes.Size(h, $0) } },
            finalMapSize: try? FeatureMapSizes(
                net, height: net.input.height ?? chosen.spec.inputSize,
                width: net.input.width ?? chosen.spec.inputSize
            ).head)
    }

    // MARK: structure

    package func structuralDeviations(_ net: DenseNet, _ spec: ArchitectureSpec) -> [Deviation] {
        var out: [Deviation] = []
        func expect<T: Equatable>(_ layer: String, _ check: String, _ expected: T, _ found: T) {
            if expected != found {
                out.append(Deviation(layer: layer, check: check, expected: "\(expected)", found: "\(found)"))
            }
        }
        // Stem.
        let stem = net.stem
        let kernel = spec.stem == .imagenet ? 7 : 3
        if stem.deep.isEmpty {
            expect("stem", "conv kernel", "\(kernel)x\(kernel)", "\(stem.conv.kernel)x\(stem.conv.kernel)")
            expect("stem", "conv stride", spec.stem == .imagenet ? 2 : 1, stem.conv.stride)
            expect("stem", "conv padding", [kernel / 2, kernel / 2, kernel / 2, kernel / 2], stem.conv.pads)
        } else {
            // A deep stem is one finding, whatever its convs are.
            expect(
                "stem", "convs", "one \(kernel)x\(kernel) stride \(spec.stem == .imagenet ? 2 : 1)",
                "deep stem: " + stem.convolutions.map { describe($0.conv) }.joined(separator: ", "))
        }
        expect("stem", "filters", spec.stemFilters, stem.outChannels)
        let normed = stem.convolutions.allSatisfy { $0.norm != nil || $0.normFolded }
        if spec.stem == .imagenet {
            expect("stem", "BatchNorm", "present", normed ? "present" : "absent")
            expect("stem", "ReLU", true, stem.relu)
            let expectedPool = Pool2D(kind: .max, kernel: 3, stride: 2, pads: [1, 1, 1, 1])
            expect("stem", "max pool", describe(expectedPool), describe(stem.pool, blur: stem.blur))
        } else {
            expect("stem", "BatchNorm", "absent", stem.norm != nil || stem.normFolded ? "present" : "absent")
            expect("stem", "max pool", "none", describe(stem.pool, blur: stem.blur))
        }
        // Blocks and transitions.
        expect("model", "dense blocks", spec.blocks.count, net.blocks.count)
        for step in net.steps {
            let name = step.layer.name
            switch step {
            case .denseLayer(let layer, let block, let index, _) where block <= spec.blocks.count:
                if index == 1 {
                    expect(
                        CanonicalLayer.block(block).name, "layers", spec.blocks[block - 1],
                        net.blocks[block - 1].layers.count)
                }
                expect(name, "growth rate", spec.growthRate, layer.growth)
                expect(
                    name, "bottleneck", spec.bottleneck ? "present" : "absent",
                    layer.bottleneck == nil ? "absent" : "present")
                if let bottleneck = layer.bottleneck {
                    if spec.bottleneck {
                        expect(name, "bottleneck width", spec.bottleneckWidth, bottleneck.conv.outChannels)
                    }
                    expect(
                        name, "bottleneck conv", "1x1 stride 1",
                        "\(bottleneck.conv.kernel)x\(bottleneck.conv.kernel) stride \(bottleneck.conv.stride)")
                    expect(
                        name, "bottleneck BatchNorm", "present",
                        bottleneck.norm != nil || bottleneck.normFolded ? "present" : "absent")
                }
                let conv = layer.conv
                expect(
                    name, "conv", "3x3 stride 1 pad 1",
                    "\(conv.kernel)x\(conv.kernel) stride \(conv.stride) pad \(conv.pads[0])")
                if conv.pads != [1, 1, 1, 1] { expect(name, "conv padding", [1, 1, 1, 1], conv.pads) }
                if conv.bias != nil { expect(name, "conv bias", "none", "present") }
            case .transition(let transition, let index) where index <= spec.blocks.count:
                let conv = transition.conv
                let expectedOut = Int((spec.compression * Double(transition.norm.channels)).rounded(.down))
                if conv.outChannels != expectedOut {
                    out.append(
                        Deviation(
                            layer: name, check: "output channels",
                            expected: "\(expectedOut) (theta \(format(spec.compression)))",
                            found: "\(conv.outChannels)"))
                }
                expect(name, "conv", "1x1 stride 1", "\(conv.kernel)x\(conv.kernel) stride \(conv.stride)")
                expect(name, "pool", describe(Pool2D(kind: .average, kernel: 2, stride: 2)), describe(transition.pool))
            default:
                break
            }
        }
        if net.transitions.count != max(net.blocks.count - 1, 0) {
            expect("model", "transitions", max(net.blocks.count - 1, 0), net.transitions.count)
        }
        return out
    }

    /// How far `net`'s shape is from `spec`'s, most telling first: another stem kind, another number of
    /// blocks, and the blocks with another number of layers (a block one has and the other lacks counts).
    package func shapeDifferences(_ net: DenseNet, _ spec: ArchitectureSpec) -> (stem: Int, blocks: Int, layers: Int) {
        // An ImageNet stem downsamples before the first block; a deep one (3x3 convs) does too.
        let downsamples = net.stem.conv.kernel == 7 || net.stem.pool != nil || net.stem.blur != nil
        let stemKind: ArchitectureSpec.StemKind = downsamples ? .imagenet : .cifar
        let layers = net.blocks.map(\.layers.count)
        return (
            stemKind == spec.stem ? 0 : 1, layers.count == spec.blocks.count ? 0 : 1,
            zip(layers, spec.blocks).filter { $0 != $1 }.count + abs(layers.count - spec.blocks.count)
        )
    }

    /// A dense-layer deviation found the same in every dense layer, reported once for all of them
    /// ("all 58 dense layers: growth rate expected 32, found 24"); the others as they are, in order.
    package func grouped(_ deviations: [Deviation], _ net: DenseNet) -> [Deviation] {
        let denseLayers = Set(
            net.steps.compactMap { step -> String? in
                guard case .denseLayer = step else { return nil }
                return step.layer.name
            })
        guard denseLayers.count > 1 else { return deviations }
        struct Finding: Hashable { var check: String, expected: String, found: String }
        var layersWith: [Finding: Set<String>] = [:]
        for deviation in deviations where denseLayers.contains(deviation.layer) {
            layersWith[
                Finding(check: deviation.check, expected: deviation.expected, found: deviation.found), default: []
            ]
            .insert(deviation.layer)
        }
        let everywhere = Set(layersWith.filter { $0.value == denseLayers }.keys)
        var reported = Set<Finding>()
        return deviations.compactMap { deviation in
            let finding = Finding(check: deviation.check, expected: deviation.expected, found: deviation.found)
            guard denseLayers.contains(deviation.layer), everywhere.contains(finding) else { return deviation }
            guard reported.insert(finding).inserted else { return nil }
            return Deviation(
                layer: "all \(denseLayers.count) dense layers", check: deviation.check, expected: deviation.expected,
                found: deviation.found)
        }
    }

    // MARK: weights

    package func weightDeviations(_ net: DenseNet) -> [Deviation] {
        var out: [Deviation] = []
        for step in net.steps {
            let (layer, tensors, norms) = (step.layer.name, step.tensors, step.norms)
            for t in tensors {
                let bad = t.nonFiniteCount
                if bad > 0 {
                    out.append(
                        Deviation(
                            layer: layer, check: "finite weights", expected: "0 NaN/Inf",
                            found: "\(bad) NaN/Inf in '\(t.name)'"))
                }
            }
            for n in norms {
                let nonPositive = n.variance.values.filter { !($0 > 0) }.count
                if nonPositive > 0 {
                    out.append(
                        Deviation(
                            layer: layer, check: "BatchNorm variance", expected: "all > 0",
                            found: "\(nonPositive) <= 0 in '\(n.variance.name)'"))
                }
            }
        }
        return out
    }

    private func allNorms(_ net: DenseNet) -> [BatchNorm] { net.steps.flatMap(\.norms) }

    private func describe(_ pool: Pool2D) -> String {
        "\(pool.kind.rawValue) \(pool.kernel)x\(pool.kernel) stride \(pool.stride) pad \(pool.pads[0])"
    }

    /// The stem's downsampling: its pool, then a blur pool if any ("none" without either).
    private func describe(_ pool: Pool2D?, blur: BlurPool2D?) -> String {
        let parts =
            (pool.map { [describe($0)] } ?? [])
            + (blur.map { ["blur pool \($0.kernel)x\($0.kernel) stride \($0.stride) reflect pad \($0.padding)"] } ?? [])
        return parts.isEmpty ? "none" : parts.joined(separator: ", then ")
    }

    private func describe(_ conv: Conv2D) -> String {
        "\(conv.kernel)x\(conv.kernel) stride \(conv.stride) (\(conv.outChannels) filters)"
    }

    private func format(_ value: Double) -> String { value == value.rounded() ? String(Int(value)) : String(value) }
}

/// Errors of `verify` usage (the model itself never throws here: its findings are deviations).
public enum VerifyError: Error, CustomStringConvertible {
    case unknownArchitecture(String, known: [String])

    public var description: String {
        switch self {
        case .unknownArchitecture(let name, let known):
            return "unknown architecture '\(name)'; known: \(known.joined(separator: ", "))"
        }
    }
}
