import DenseKitGraph
import DenseKitKernels
import Dispatch

/// The model prepared for the SIMD executor: weights packed for the GEMM, the BatchNorms that
/// directly follow a conv (stem, bottleneck) folded into that conv's weights and bias, and every
/// other BatchNorm turned into a per-channel (scale, shift) applied together with its ReLU.
/// All exact in real arithmetic; results differ from the unfolded graph by float rounding only.
///
/// The kernels run without bounds checks, so the plan is made only from a graph that passes
/// `DenseNet.validate()` here, whoever built it: every tensor then holds exactly the values its
/// layer's sizes say, which is all the packing below and the kernels rely on.
package final class ExecutionPlan: @unchecked Sendable {
    package struct Affine {
        package let scale: AlignedBuffer
        package let shift: AlignedBuffer
        package init(_ bn: BatchNorm, in arena: WeightArena?) {
            let affine = bn.affine()
            scale = AlignedBuffer(affine.scale, in: arena)
            shift = AlignedBuffer(affine.shift, in: arena)
        }
    }

    package struct Conv {
        package let weights: PackedMatrix
        package let bias: AlignedBuffer?
        package let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, pads: [Int]

        /// `original` followed by `norm` (if any), folded (the same floats as `Conv2D.folding`) and packed
        /// for the GEMM in one pass from where the weights are (a mapped file's are read in place).
        /// `shifted`: a dense layer's same-size conv on bordered maps, packed for `ShiftedConvolution`.
        package init(_ original: Conv2D, then norm: BatchNorm? = nil, shifted: Bool = false, in arena: WeightArena?) {
            inChannels = original.inChannels
            outChannels = original.outChannels
            kernel = original.kernel
            stride = original.stride
            pads = original.pads
            isPointwise = Self.isPointwise(original)
            let affine = norm?.affine()
            let (outputs, inputs, side) = (outChannels, inChannels, kernel)
            weights = original.weight.withFloats { values in
                func pack(scales: UnsafeBufferPointer<Float>?) -> PackedMatrix {
                    PackedMatrix(
                        convolution: values, outChannels: outputs, inChannels: inputs, kernel: side, scales: scales,
                        rows: shifted ? .outputTaps : .outputs, in: arena)
                }
                guard let scales = affine?.scale else { return pack(scales: nil) }
                return scales.withUnsafeBufferPointer { pack(scales: $0) }
            }
            if let affine {
                bias = AlignedBuffer(original.foldedBias(scales: affine.scale, shifts: affine.shift), in: arena)
            } else {
                bias = original.bias?.aligned(in: arena)
            }
        }

        /// A plain GEMM on the input itself; every other conv reads its input's phase planes
        /// (`PhaseConvolution`), with weights tap-major, unless packed for `ShiftedConvolution`.
        package let isPointwise: Bool

        package static func isPointwise(_ conv: Conv2D) -> Bool {
            conv.kernel == 1 && conv.stride == 1 && conv.pads == [0, 0, 0, 0]
        }

        /// The phase-plane geometry of this conv on an h x w input.
        package func phases(_ height: Int, _ width: Int) -> PhaseConvolution {
            PhaseConvolution(
                channels: inChannels, height: height, width: width, kernel: kernel, stride: stride, pads: pads)
        }

    }

    /// How a dense layer's conv is computed: as a GEMM (`ShiftedConvolution` or `PhaseConvolution`),
    /// or, for a 3x3 "same" conv after a bottleneck in `ConvolutionMode.fast`, by Winograd.
    package enum LayerConvolution {
        case direct(Conv)
        case winograd(WinogradWeights, bias: AlignedBuffer?)

        package var outChannels: Int {
            switch self {
            case .direct(let conv): conv.outChannels
            case .winograd(let weights, _): weights.outChannels
            }
        }

        package var winograd: WinogradWeights? {
            if case .winograd(let weights, _) = self { return weights }
            return nil
        }
    }

    package struct Layer {
        package let norm: Affine
        package let bottleneck: Conv?
        package let conv: LayerConvolution
    }

    package struct TransitionStep {
        package let norm: Affine
        package let conv: Conv
        package let pool: Pool2D
        /// AvgPool 2x2/2 without padding: pooled before the 1x1 conv (4x less work, exact).
        package var poolFirst: Bool {
            pool.kind == .average && pool.kernel == 2 && pool.stride == 2 && pool.pads == [0, 0, 0, 0]
                && conv.isPointwise
        }
    }

    /// Applied to each image as it is copied in.
    package let inputTransform: InputTransform?
    package let stemConv: Conv
    package let stemReLU: Bool
    package let stemPool: Pool2D?
    /// A deep stem's convs after the first, their BNs folded in (a ReLU follows each).
    package let stemDeep: [Conv]
    package let stemBlur: BlurPool2D?
    /// Whether the stem runs stage by stage (a deep or blurred one) rather than fused with its pool.
    package var stemStagewise: Bool { !stemDeep.isEmpty || stemBlur != nil }
    package let blocks: [[Layer]]
    /// Channels leaving each block (its buffer's width).
    package let blockWidths: [Int]
    /// The border of the block buffers' planes (`PlaneLayout`): the dense layers' padding when every
    /// dense-layer conv is a stride-1 "same" conv of one odd kernel size after a pointwise bottleneck
    /// (or none), else 0.
    package let border: Int
    package let transitions: [TransitionStep]
    /// A dense layer of the head: weights (out, in) and bias copied once (a mapped `.dnk` would copy
    /// them every run), then its activation.
    package struct DenseStep {
        package let weight: AlignedBuffer
        package let bias: AlignedBuffer?
        package let inFeatures: Int, outFeatures: Int
        package let activation: Head.Activation
    }

    package let headNorm: Affine
    package let headPool: Head.Pool?
    package let outputKeepsMapAxes: Bool
    package let dense: [DenseStep]
    /// Values per image (per position without a pool), as `DenseNet.classes`.
    package let classes: Int
    package let layerNames: [String]
    package let headNames: [String]
    /// What decides every stage's map size for a given input (`FeatureMapSizes`).
    package let geometry: FeatureMapSizes.Geometry

    package let mode: ConvolutionMode
    /// The memory the packed weights are carved from.
    package let weightArena: WeightArena

    package init(_ net: DenseNet, mode: ConvolutionMode) throws {
        try net.validate()
        self.mode = mode
        geometry = FeatureMapSizes.Geometry(net)
        stemReLU = net.stem.relu
        inputTransform = net.inputTransform
        stemPool = net.stem.pool
        stemBlur = net.stem.blur
        let layers = net.blocks.flatMap(\.layers)
        let kernel = layers.first?.conv.kernel ?? 1
        let sameConvs = layers.allSatisfy { l in
            l.conv.kernel == kernel && l.conv.stride == 1 && l.conv.pads.allSatisfy { $0 == kernel / 2 }
                && l.bottleneck.map { Conv.isPointwise($0.conv) } != false
        }
        border = sameConvs && kernel > 1 && kernel % 2 == 1 ? kernel / 2 : 0
        // The Winograd transform of each block's dense-layer convs (nil: direct), chosen for the block's
        // map size at the architecture's usual input: 224 px for an ImageNet stem (one that downsamples),
        // 32 px for a CIFAR one. Not the file's declared input size: every format of one model (and
        // `convert`'s read-back) must run the same arithmetic, and some formats declare no size.
        let side = net.stem.conv.stride > 1 || net.stem.pool != nil ? 224 : 32
        let nominal = try? FeatureMapSizes(geometry, height: side, width: side)
        let transforms = net.blocks.indices.map { [border] b -> WinogradTransform? in
            guard mode == .fast, border == 1, kernel == 3, let size = nominal?.blocks[b] else { return nil }
            return WinogradPolicy.transform(height: size.height, width: size.width)
        }
        // A dense layer's Winograd transform (nil: its conv is direct).
        @Sendable func winograd(_ layer: DenseLayer, block: Int) -> WinogradTransform? {
            layer.bottleneck == nil ? nil : transforms[block - 1]
        }
        // Room for every packed weight in one mapping, which their buffers keep alive.
        let arena = WeightArena(bytes: Self.packedBytes(net, winograd: winograd))
        weightArena = arena
        stemConv = Conv(net.stem.conv, then: net.stem.norm, in: arena)
        stemDeep = net.stem.deep.map { Conv($0.conv, then: $0.norm, in: arena) }
        // Everything is packed on all cores, one item per dense layer, transition and dense step of the
        // head, taken in turn by whichever core is free: the head's and the transitions' larger weights
        // first, then the dense layers (whose Winograd filter transforms take most of a plan's making).
        let denseLayers = net.steps.compactMap { step -> (layer: DenseLayer, block: Int)? in
            guard case .denseLayer(let layer, let block, _, _) = step else { return nil }
            return (layer, block)
        }
        let (denseCount, transitionCount) = (net.head.dense.count, net.transitions.count)
        nonisolated(unsafe) let packedLayers = UnsafeMutableBufferPointer<Layer?>.allocate(capacity: denseLayers.count)
        nonisolated(unsafe) let packedTransitions = UnsafeMutableBufferPointer<TransitionStep?>.allocate(
            capacity: transitionCount)
        nonisolated(unsafe) let packedDense = UnsafeMutableBufferPointer<DenseStep?>.allocate(capacity: denseCount)
        packedLayers.initialize(repeating: nil)
        packedTransitions.initialize(repeating: nil)
        packedDense.initialize(repeating: nil)
        defer {
            for buffer in [packedLayers.deinitialize(), packedTransitions.deinitialize(), packedDense.deinitialize()] {
                buffer.deallocate()
            }
        }
        let shifted = border > 0
        DispatchQueue.concurrentPerform(iterations: denseCount + transitionCount + denseLayers.count) { item in
            if item < denseCount {
                let linear = net.head.dense[item].linear
                packedDense[item] = DenseStep(
                    weight: linear.weight.aligned(in: arena), bias: linear.bias?.aligned(in: arena),
                    inFeatures: linear.inFeatures, outFeatures: linear.outFeatures,
                    activation: net.head.dense[item].activation)
                return
            }
            if item < denseCount + transitionCount {
                let step = net.transitions[item - denseCount]
                packedTransitions[item - denseCount] = TransitionStep(
                    norm: Affine(step.norm, in: arena), conv: Conv(step.conv, in: arena), pool: step.pool)
                return
            }
            let layerItem = item - denseCount - transitionCount
            let (layer, block) = denseLayers[layerItem]
            let conv: LayerConvolution
            if let transform = winograd(layer, block: block) {
                let weights = layer.conv.weight.withFloats {
                    WinogradWeights(
                        $0, outChannels: layer.conv.outChannels, inChannels: layer.conv.inChannels,
                        transform: transform,
                        in: arena)
                }
                conv = .winograd(weights, bias: layer.conv.bias?.aligned(in: arena))
            } else {
                conv = .direct(Conv(layer.conv, shifted: shifted, in: arena))
            }
            packedLayers[layerItem] = Layer(
                norm: Affine(layer.norm, in: arena),
                bottleneck: layer.bottleneck.map { Conv($0.conv, then: $0.norm, in: arena) },
                conv: conv)
        }
        var next = 0
        blocks = net.blocks.map { block in
            block.layers.map { _ in
                defer { next += 1 }
                return packedLayers[next]!
            }
        }
        blockWidths = net.blocks.map(\.outChannels)
        transitions = packedTransitions.map { $0! }
        headNorm = Affine(net.head.norm, in: arena)
        headPool = net.head.pool
        outputKeepsMapAxes = net.head.outputKeepsMapAxes
        dense = packedDense.map { $0! }
        classes = net.classes
        layerNames = net.layerNames
        headNames = net.head.layerNames
    }
}

extension ExecutionPlan {
    /// The bytes of every buffer `init` packs, as a `WeightArena` holds them: the arena's exact size.
    fileprivate static func packedBytes(
        _ net: DenseNet, winograd: (DenseLayer, _ block: Int) -> WinogradTransform?
    ) -> Int {
        var floats: [Int] = []
        func conv(_ conv: Conv2D, folding norm: BatchNorm?) {
            floats.append(
                PackedMatrix.storageCount(
                    outChannels: conv.outChannels, inChannels: conv.inChannels, kernel: conv.kernel))
            if norm != nil || conv.bias != nil { floats.append(conv.outChannels) }
        }
        func affine(_ norm: BatchNorm) { floats += [norm.channels, norm.channels] }
        for step in net.steps {
            switch step {
            case .stem(let stem):
                for convolution in stem.convolutions { conv(convolution.conv, folding: convolution.norm) }
            case .denseLayer(let layer, let block, _, _):
                affine(layer.norm)
                if let bottleneck = layer.bottleneck { conv(bottleneck.conv, folding: bottleneck.norm) }
                if let transform = winograd(layer, block) {
                    floats.append(
                        WinogradWeights.storageCount(
                            outChannels: layer.conv.outChannels, inChannels: layer.conv.inChannels,
                            transform: transform))
                    if let bias = layer.conv.bias { floats.append(bias.count) }
                } else {
                    conv(layer.conv, folding: nil)
                }
            case .transition(let transition, _):
                affine(transition.norm)
                conv(transition.conv, folding: nil)
            case .head(let head):
                affine(head.norm)
                for step in head.dense {
                    floats += [step.linear.weight.count] + (step.linear.bias.map { [$0.count] } ?? [])
                }
            }
        }
        return floats.reduce(0) { $0 + WeightArena.footprint(floats: $1) }
    }
}

extension Tensor {
    /// A copy of the values, read in place when mapped.
    fileprivate func aligned(in arena: WeightArena?) -> AlignedBuffer { withFloats { AlignedBuffer($0, in: arena) } }
}
