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
final class ExecutionPlan: @unchecked Sendable {
    struct Affine {
        let scale: AlignedBuffer
        let shift: AlignedBuffer
        init(_ bn: BatchNorm) {
            let (s, t) = bn.affine()
            scale = AlignedBuffer(s)
            shift = AlignedBuffer(t)
        }
    }

    struct Conv {
        let weights: PackedMatrix
        let bias: AlignedBuffer?
        let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, pads: [Int]

        /// `conv` followed by `norm` (if any), folded (`Conv2D.folding`).
        /// `shifted`: a dense layer's same-size conv on bordered maps, packed for `ShiftedConvolution`.
        init(_ conv: Conv2D, then norm: BatchNorm? = nil, shifted: Bool = false) {
            let conv = norm.map { conv.folding($0) } ?? conv
            var w = conv.weight.values
            let b = conv.bias?.values
            inChannels = conv.inChannels
            outChannels = conv.outChannels
            kernel = conv.kernel
            stride = conv.stride
            pads = conv.pads
            isPointwise = Self.isPointwise(conv)
            if shifted {
                weights = ShiftedConvolution.pack(w, outChannels: outChannels, inChannels: inChannels, kernel: kernel)
            } else {
                if !isPointwise {
                    w = PhaseConvolution.tapMajor(w, outChannels: outChannels, inChannels: inChannels, kernel: kernel)
                }
                weights = PackedMatrix(rows: conv.outChannels, cols: w.count / conv.outChannels, values: w)
            }
            bias = b.map { AlignedBuffer($0) }
        }

        /// A plain GEMM on the input itself; every other conv reads its input's phase planes
        /// (`PhaseConvolution`), with weights tap-major, unless packed for `ShiftedConvolution`.
        let isPointwise: Bool

        static func isPointwise(_ conv: Conv2D) -> Bool {
            conv.kernel == 1 && conv.stride == 1 && conv.pads == [0, 0, 0, 0]
        }

        /// The phase-plane geometry of this conv on an h x w input.
        func phases(_ h: Int, _ w: Int) -> PhaseConvolution {
            PhaseConvolution(channels: inChannels, height: h, width: w, kernel: kernel, stride: stride, pads: pads)
        }

    }

    /// How a dense layer's conv is computed: as a GEMM (`ShiftedConvolution` or `PhaseConvolution`),
    /// or, for a 3x3 "same" conv after a bottleneck in `ConvolutionMode.fast`, by Winograd.
    enum LayerConvolution {
        case direct(Conv)
        case winograd(WinogradWeights, bias: AlignedBuffer?)

        var outChannels: Int {
            switch self {
            case .direct(let c): c.outChannels
            case .winograd(let w, _): w.outChannels
            }
        }
    }

    struct Layer {
        let norm: Affine
        let bottleneck: Conv?
        let conv: LayerConvolution
    }

    struct TransitionStep {
        let norm: Affine
        let conv: Conv
        let pool: Pool2D
        /// AvgPool 2x2/2 without padding: pooled before the 1x1 conv (4x less work, exact).
        var poolFirst: Bool { pool.kind == .average && pool.kernel == 2 && pool.stride == 2 && pool.pads == [0, 0, 0, 0] && conv.isPointwise }
    }

    let stemConv: Conv
    let stemReLU: Bool
    let stemPool: Pool2D?
    let blocks: [[Layer]]
    /// Channels leaving each block (its buffer's width).
    let blockWidths: [Int]
    /// The border of the block buffers' planes (`PlaneLayout`): the dense layers' padding when every
    /// dense-layer conv is a stride-1 "same" conv of one odd kernel size after a pointwise bottleneck
    /// (or none), else 0.
    let border: Int
    let transitions: [TransitionStep]
    /// A dense layer of the head: weights (out, in) and bias copied once (a mapped `.dnk` would copy
    /// them every run), then its activation.
    struct DenseStep {
        let weight: AlignedBuffer
        let bias: AlignedBuffer?
        let inFeatures: Int, outFeatures: Int
        let activation: Head.Activation
    }

    let headNorm: Affine
    let headPool: Head.Pool?
    let dense: [DenseStep]
    /// Values per image (per position without a pool), as `DenseNet.classes`.
    let classes: Int
    let layerNames: [String]
    let headNames: [String]
    /// What decides every stage's map size for a given input (`FeatureMapSizes`).
    let geometry: FeatureMapSizes.Geometry

    let mode: ConvolutionMode

    init(_ net: DenseNet, mode: ConvolutionMode) throws {
        try net.validate()
        self.mode = mode
        geometry = FeatureMapSizes.Geometry(net)
        stemConv = Conv(net.stem.conv, then: net.stem.norm)
        stemReLU = net.stem.relu
        stemPool = net.stem.pool
        let layers = net.blocks.flatMap(\.layers)
        let k = layers.first?.conv.kernel ?? 1
        let sameConvs = layers.allSatisfy { l in
            l.conv.kernel == k && l.conv.stride == 1 && l.conv.pads.allSatisfy { $0 == k / 2 }
                && l.bottleneck.map { Conv.isPointwise($0.conv) } != false
        }
        border = sameConvs && k > 1 && k % 2 == 1 ? k / 2 : 0
        let nominal = try? FeatureMapSizes(geometry, height: net.input.height ?? 224, width: net.input.width ?? 224)
        // The Winograd transform of each block's dense-layer convs (nil: direct), chosen for the block's
        // map size at the model's own input size (224 where it has none).
        let transforms = net.blocks.indices.map { [border] b -> WinogradTransform? in
            guard mode == .fast, border == 1, k == 3, let size = nominal?.blocks[b] else { return nil }
            return WinogradPolicy.transform(height: size.height, width: size.width)
        }
        // The layers are packed on all cores (the Winograd filter transforms take most of a plan's making).
        let places = net.blocks.indices.flatMap { b in net.blocks[b].layers.indices.map { (b, $0) } }
        nonisolated(unsafe) let packed = UnsafeMutableBufferPointer<Layer?>.allocate(capacity: places.count)
        packed.initialize(repeating: nil)
        defer { packed.deinitialize(); packed.deallocate() }
        let shifted = border > 0
        DispatchQueue.concurrentPerform(iterations: places.count) { i in
            let (b, index) = places[i], l = net.blocks[b].layers[index]
            let conv: LayerConvolution
            if let transform = transforms[b], l.bottleneck != nil {
                conv = .winograd(WinogradWeights(l.conv.weight.values, outChannels: l.conv.outChannels, inChannels: l.conv.inChannels,
                                                 transform: transform), bias: l.conv.bias.map { AlignedBuffer($0.values) })
            } else {
                conv = .direct(Conv(l.conv, shifted: shifted))
            }
            packed[i] = Layer(norm: Affine(l.norm), bottleneck: l.bottleneck.map { Conv($0.conv, then: $0.norm) }, conv: conv)
        }
        var next = 0
        blocks = net.blocks.map { block in
            block.layers.map { _ in
                defer { next += 1 }
                return packed[next]!
            }
        }
        blockWidths = net.blocks.map(\.outChannels)
        transitions = net.transitions.map { TransitionStep(norm: Affine($0.norm), conv: Conv($0.conv), pool: $0.pool) }
        headNorm = Affine(net.head.norm)
        headPool = net.head.pool
        dense = net.head.dense.map {
            DenseStep(weight: AlignedBuffer($0.linear.weight.values), bias: $0.linear.bias.map { AlignedBuffer($0.values) },
                      inFeatures: $0.linear.inFeatures, outFeatures: $0.linear.outFeatures, activation: $0.activation)
        }
        classes = net.classes
        layerNames = net.layerNames
        headNames = net.head.layerNames
    }
}
