import DenseKitKernels
import Dispatch

/// The model prepared for the SIMD executor: weights packed for the GEMM, the BatchNorms that
/// directly follow a conv (stem, bottleneck) folded into that conv's weights and bias, and every
/// other BatchNorm turned into a per-channel (scale, shift) applied together with its ReLU.
/// All exact in real arithmetic; results differ from the unfolded graph by float rounding only.
/// Each buffer has a name (`PlanBuffers`): a `.dnk`'s executor cache stores them under those names,
/// and a plan made with that cache takes every buffer it holds at the expected size instead of making it.
///
/// The kernels run without bounds checks, so the plan is made only from a graph that passes
/// `DenseNet.validate()` here, whoever built it: every tensor then holds exactly the values its
/// layer's sizes say, which is all the packing below and the kernels rely on.
final class ExecutionPlan: @unchecked Sendable {
    struct Affine {
        let scale: AlignedBuffer
        let shift: AlignedBuffer
        /// BatchNorm `name` (`<name>.scale`, `<name>.shift` in `buffers`).
        init(_ bn: BatchNorm, _ name: String, _ buffers: PlanBuffers) {
            let affine = Lazy { bn.affine() }
            scale = buffers.buffer(name + ".scale", affine.value.scale, count: bn.channels)
            shift = buffers.buffer(name + ".shift", affine.value.shift, count: bn.channels)
        }
    }

    struct Conv {
        let weights: PackedMatrix
        let bias: AlignedBuffer?
        let inChannels: Int, outChannels: Int, kernel: Int, stride: Int, pads: [Int]

        /// Conv `name`, followed by `norm` (if any), folded (`Conv2D.folding`): `<name>.packed` (or
        /// `.shifted`) and `<name>.bias` in `buffers`.
        /// `shifted`: a dense layer's same-size conv on bordered maps, packed for `ShiftedConvolution`.
        init(_ original: Conv2D, then norm: BatchNorm? = nil, shifted: Bool = false, _ name: String, _ buffers: PlanBuffers) {
            let folded = Lazy { norm.map { original.folding($0) } ?? original }
            inChannels = original.inChannels
            outChannels = original.outChannels
            kernel = original.kernel
            stride = original.stride
            pads = original.pads
            isPointwise = Self.isPointwise(original)
            let (o, i, k, pointwise) = (outChannels, inChannels, kernel, isPointwise)
            if shifted {
                let rows = (o + 7) / 8 * k * k * 8
                weights = PackedMatrix(rows: rows, cols: i, storage: buffers.buffer(name + ".shifted", count: PackedMatrix.storageCount(rows: rows, cols: i)) {
                    ShiftedConvolution.pack(folded.value.weight.values, outChannels: o, inChannels: i, kernel: k).storage
                })
            } else {
                let cols = i * k * k
                weights = PackedMatrix(rows: o, cols: cols, storage: buffers.buffer(name + ".packed", count: PackedMatrix.storageCount(rows: o, cols: cols)) {
                    let w = folded.value.weight.values
                    return PackedMatrix(rows: o, cols: cols,
                                        values: pointwise ? w : PhaseConvolution.tapMajor(w, outChannels: o, inChannels: i, kernel: k)).storage
                })
            }
            bias = original.bias != nil || norm != nil ? buffers.buffer(name + ".bias", folded.value.bias!.values, count: o) : nil
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

        var winograd: WinogradWeights? {
            if case .winograd(let w, _) = self { return w }
            return nil
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
    /// Every buffer of the plan by name (what a `.dnk`'s executor cache stores), and where each came from.
    let buffers: PlanBuffers

    init(_ net: DenseNet, mode: ConvolutionMode, cache: ExecutorCache? = nil) throws {
        try net.validate()
        self.mode = mode
        let buffers = PlanBuffers(cache: cache)
        self.buffers = buffers
        geometry = FeatureMapSizes.Geometry(net)
        stemConv = Conv(net.stem.conv, then: net.stem.norm, "stem.conv", buffers)
        stemReLU = net.stem.relu
        stemPool = net.stem.pool
        let layers = net.blocks.flatMap(\.layers)
        let k = layers.first?.conv.kernel ?? 1
        let sameConvs = layers.allSatisfy { l in
            l.conv.kernel == k && l.conv.stride == 1 && l.conv.pads.allSatisfy { $0 == k / 2 }
                && l.bottleneck.map { Conv.isPointwise($0.conv) } != false
        }
        border = sameConvs && k > 1 && k % 2 == 1 ? k / 2 : 0
        // The Winograd transform of each block's dense-layer convs (nil: direct), chosen for the block's
        // map size at the architecture's usual input: 224 px for an ImageNet stem (one that downsamples),
        // 32 px for a CIFAR one. Not the file's declared input size: every format of one model (and
        // `convert`'s read-back) must run the same arithmetic, and some formats declare no size.
        let side = net.stem.conv.stride > 1 || net.stem.pool != nil ? 224 : 32
        let nominal = try? FeatureMapSizes(geometry, height: side, width: side)
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
            let name = "block\(b + 1).layer\(index + 1)"
            let conv: LayerConvolution
            if let t = transforms[b], l.bottleneck != nil {
                let (o, c) = (l.conv.outChannels, l.conv.inChannels)
                let storage = buffers.buffer(name + ".conv.winograd\(t.m)", count: WinogradWeights.storageCount(outChannels: o, inChannels: c, transform: t)) {
                    WinogradWeights(l.conv.weight.values, outChannels: o, inChannels: c, transform: t).storage
                }
                conv = .winograd(WinogradWeights(transform: t, outChannels: o, inChannels: c, storage: storage),
                                 bias: l.conv.bias.map { buffers.buffer(name + ".conv.bias", $0.values, count: o) })
            } else {
                conv = .direct(Conv(l.conv, shifted: shifted, name + ".conv", buffers))
            }
            packed[i] = Layer(norm: Affine(l.norm, name + ".norm", buffers),
                              bottleneck: l.bottleneck.map { Conv($0.conv, then: $0.norm, name + ".bottleneck.conv", buffers) }, conv: conv)
        }
        var next = 0
        blocks = net.blocks.map { block in
            block.layers.map { _ in
                defer { next += 1 }
                return packed[next]!
            }
        }
        blockWidths = net.blocks.map(\.outChannels)
        transitions = net.transitions.enumerated().map { t, step in
            TransitionStep(norm: Affine(step.norm, "transition\(t + 1).norm", buffers), conv: Conv(step.conv, "transition\(t + 1).conv", buffers),
                           pool: step.pool)
        }
        headNorm = Affine(net.head.norm, "head.norm", buffers)
        headPool = net.head.pool
        dense = zip(CanonicalLayout.denseNames(count: net.head.dense.count), net.head.dense).map { name, d in
            DenseStep(weight: buffers.buffer(name + ".weight", d.linear.weight.values, count: d.linear.outFeatures * d.linear.inFeatures),
                      bias: d.linear.bias.map { buffers.buffer(name + ".bias", $0.values, count: d.linear.outFeatures) },
                      inFeatures: d.linear.inFeatures, outFeatures: d.linear.outFeatures, activation: d.activation)
        }
        classes = net.classes
        layerNames = net.layerNames
        headNames = net.head.layerNames
        // The plan is ready only once every byte it took from the file is checked: the cache's
        // buffers (checked while it was made), and, where a buffer the cache lacked was made from the
        // file's weights, those weights (made from unchecked bytes, the plan is then discarded).
        try cache?.bufferChecks?.verify()
        if buffers.cached < buffers.named.count { try cache?.weightChecks?.verify() }
    }
}

/// A value computed on first use (a fold or transform that a cache may make unnecessary).
final class Lazy<Value>: @unchecked Sendable {
    private var stored: Value?
    private let make: () -> Value
    init(_ make: @escaping () -> Value) { self.make = make }
    var value: Value {
        if let stored { return stored }
        let v = make()
        stored = v
        return v
    }
}
