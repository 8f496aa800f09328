import DenseKitGraph
import DenseKitKernels

/// The SIMD executor: runs a canonical DenseNet on float32 NCHW input, one image at a time.
///
/// Each dense block has one preallocated buffer into which every layer writes its k channels in place
/// (no concat copies); transitions pool before their 1x1 conv; BN-ReLU is applied while preparing each
/// GEMM operand. `threads` splits every GEMM by columns, or by rows where the column panels would
/// divide unevenly (7x7 and 14x14 maps); 1 means no other thread is used.
/// The workspace for one input size is kept between runs (fresh memory costs page faults), so an
/// executor runs one batch at a time.
public final class Executor: @unchecked Sendable {
    package let plan: ExecutionPlan
    public let threads: Int
    public let classes: Int
    public let inputChannels: Int
    /// The integer executor, for a quantised model (which runs on it alone).
    private let integer: QuantizedExecutor?

    /// Packs `net`'s weights for `mode`; throws when the graph does not pass `DenseNet.validate()`.
    public init(_ net: DenseNet, threads: Int = 1, mode: ConvolutionMode = .default) throws {
        plan = try ExecutionPlan(net, mode: mode)
        self.threads = max(1, threads)
        classes = net.classes
        inputChannels = net.stem.conv.inChannels
        integer = net.isQuantized ? QuantizedExecutor(net) : nil
    }

    /// True when the model runs on integer codes, as its framework runs it (`QuantizedExecutor`).
    public var isQuantized: Bool { integer != nil }
    /// Whose integer arithmetic the model runs with, when it is quantised.
    public var integerArithmetic: IntegerArithmetic? { integer?.arithmetic }

    public var layerNames: [String] { plan.layerNames }
    public var mode: ConvolutionMode { plan.mode }

    /// One image's output shape: [classes] (or [features]) after a global pool, [C, H, W] (the final
    /// BN-ReLU's feature map) for a head without one.
    public func outputShape(height: Int, width: Int) throws -> [Int] {
        guard plan.headPool == nil else { return [classes] + (plan.outputKeepsMapAxes ? [1, 1] : []) }
        let size = try FeatureMapSizes(plan.geometry, height: height, width: width).head
        return [plan.headNorm.scale.count, size.height, size.width]
    }

    /// Runs a batch: `input` NCHW [batch, C, height, width]; returns [batch] + `outputShape`, flattened.
    /// `observe` sees every canonical layer's activation of every image, in order.
    /// With several threads and at least as many images (and no `observe`), whole rounds of images run
    /// side by side, one image per thread (no step waits for another thread); the rest, and every
    /// image otherwise, run one at a time on all the threads.
    public func run(
        _ input: [Float], batch: Int, height: Int, width: Int,
        observe: ((Int, LayerActivation) -> Void)? = nil
    ) throws -> [Float] {
        if let integer { return try run(integer, input, batch: batch, height: height, width: width, observe: observe) }
        // The workspace first: it checks the size (16384 a side at most), so the products below are small.
        let execution = try workspace(height, width)
        let per = inputChannels * height * width
        guard batch > 0, input.count / per == batch, input.count % per == 0 else {
            throw ExecutionError.inputShape(
                expected: "[N, \(inputChannels), \(height), \(width)]", found: [input.count])
        }
        var outputs = [[Float]](repeating: [], count: batch)
        let perRound = min(threads, WorkerPool.maxParts)
        let side = observe == nil && threads > 1 ? batch / perRound * perRound : 0
        if side > 0 {
            let lanes = try singleThreaded(height, width)
            let results = UnsafeMutableBufferPointer<[Float]>.allocate(capacity: side)
            results.initialize(repeating: [])
            defer {
                results.deinitialize()
                results.deallocate()
            }
            WorkerPool.shared(threads: threads).run(parts: lanes.count) { part in
                for n in stride(from: part, to: side, by: lanes.count) {
                    results[n] = Self.output(of: lanes[part], input[(n * per)..<((n + 1) * per)])
                }
            }
            for n in 0..<side { outputs[n] = results[n] }
        }
        execution.reportsActivations = observe != nil
        for n in side..<batch {
            outputs[n] = Self.output(of: execution, input[(n * per)..<((n + 1) * per)]) { observe?(n, $0) }
        }
        return Array(outputs.joined())
    }

    /// A quantised model's batch, one image after another on the integer executor.
    private func run(
        _ integer: QuantizedExecutor, _ input: [Float], batch: Int, height: Int, width: Int,
        observe: ((Int, LayerActivation) -> Void)?
    ) throws -> [Float] {
        try integer.check(height: height, width: width)  // the size first, so the product below is small
        let per = inputChannels * height * width
        guard batch > 0, input.count == batch * per else {
            throw ExecutionError.inputShape(
                expected: "[N, \(inputChannels), \(height), \(width)]", found: [input.count])
        }
        var outputs: [Float] = []
        for n in 0..<batch {
            outputs += integer.run(
                image: Array(input[(n * per)..<((n + 1) * per)]), height: height, width: width,
                observe: observe.map { observe in
                    { layer in layer.values.withUnsafeBufferPointer { observe(n, layer.activation($0)) } }
                })
        }
        return outputs
    }

    /// Runs one image through `execution`; returns the head's values.
    private static func output(
        of execution: ImageExecution, _ image: ArraySlice<Float>,
        observe: (LayerActivation) -> Void = { _ in }
    ) -> [Float] {
        execution.reset(image: image)
        var output: [Float] = []
        while let activation = execution.next() {
            observe(activation)
            if activation.name == "head" { output += activation.values }
        }
        return output
    }

    /// Starts a step-by-step execution of one image (CHW), for comparing two models layer by layer.
    public func start(image: ArraySlice<Float>, height: Int, width: Int) throws -> any LayerByLayer {
        guard image.count == inputChannels * height * width else {
            throw ExecutionError.inputShape(expected: "[\(inputChannels), \(height), \(width)]", found: [image.count])
        }
        if let integer {
            try integer.check(height: height, width: width)
            return RecordedExecution { record in
                withoutActuallyEscaping(record) { record in
                    _ = integer.run(image: Array(image), height: height, width: width, observe: record)
                }
            }
        }
        let execution = try ImageExecution(plan: plan, height: height, width: width, threads: threads)
        execution.reset(image: image)
        return execution
    }

    /// Sizes the workspace for `height` x `width` images now; throws where that input does not fit
    /// the model or would need more memory than the executor allows.
    public func reserve(height: Int, width: Int) throws {
        if let integer { return try integer.check(height: height, width: width) }
        _ = try workspace(height, width)
    }

    private var cached: ImageExecution?
    /// One single-threaded workspace per thread, for images run side by side.
    private var lanes: [ImageExecution] = []

    /// `threads` (at most `WorkerPool.maxParts`) single-threaded workspaces for this input size, reused while the size
    /// is the same.
    private func singleThreaded(_ height: Int, _ width: Int) throws -> [ImageExecution] {
        if let lane = lanes.first, lane.height == height, lane.width == width { return lanes }
        lanes = try (0..<min(threads, WorkerPool.maxParts)).map { _ in
            try ImageExecution(plan: plan, height: height, width: width, threads: 1)
        }
        return lanes
    }

    /// The workspace for this input size, reused from the previous run when the size is the same.
    private func workspace(_ height: Int, _ width: Int) throws -> ImageExecution {
        if let existing = cached, existing.height == height, existing.width == width { return existing }
        let execution = try ImageExecution(plan: plan, height: height, width: width, threads: threads)
        cached = execution
        return execution
    }
}

/// One image going through the network a canonical layer at a time; the workspace is reused by `reset`.
///
/// Block buffers store their maps in `PlaneLayout` with the plan's border: each dense layer's 3x3 conv
/// reads the bottleneck's output planes as they are and writes into the block buffer directly.
public final class ImageExecution {
    package let plan: ExecutionPlan
    package let threads: Int
    package let height: Int, width: Int
    /// Whether `next()` returns every layer's values (for comparing models); otherwise only the head's.
    public var reportsActivations = true
    private let image: AlignedBuffer
    private var blockA: AlignedBuffer, blockB: AlignedBuffer
    private let scratch: AlignedBuffer, bottleneck: AlignedBuffer, stemOut: AlignedBuffer
    /// A conv's input as zero-padded phase planes and its wide output grid (`PhaseConvolution`).
    private let planes: AlignedBuffer, grid: AlignedBuffer
    /// Packed copies of bordered maps: reported activations, the head's input, a general transition's input.
    private var packed: AlignedBuffer
    /// The head's outputs: the pooled features, then each dense layer's values (or the feature map).
    private let headOut: AlignedBuffer
    /// B of a GEMM that the threads split by rows, packed once for all of them (`GEMM.sharedPackingCount`).
    private let sharedPacking: AlignedBuffer
    /// One per thread, for the Winograd convs.
    private let winograd: [WinogradConvolution.Scratch]
    /// Head layers computed by the head's step, returned by the calls of `next()` after it.
    private var pending: [LayerActivation] = []

    private var step = 0
    private var block = 0, layer = 0
    private var offset = 0
    private var mapHeight = 0, mapWidth = 0
    private var layout: PlaneLayout { PlaneLayout(height: mapHeight, width: mapWidth, border: plan.border) }

    /// Every stage's map size for this input: the one walk of the geometry that both sizes the
    /// buffers here and drives the steps.
    package let sizes: FeatureMapSizes

    /// The most memory one image's workspace may take (a larger input is refused before allocating).
    package static let maximumWorkspaceBytes = 8 << 30

    package init(plan: ExecutionPlan, height: Int, width: Int, threads: Int) throws {
        self.plan = plan
        self.threads = threads
        self.height = height
        self.width = width
        let sizes = try FeatureMapSizes(plan.geometry, height: height, width: width)
        self.sizes = sizes
        let stem = plan.stemConv
        let border = plan.border
        var maxBlock = 0
        var maxScratch = 0
        var maxBottleneck = 0
        var maxPlanes = 0
        var maxGrid = 0
        var maxPacked = 0
        var maxShared = 0
        /// Grows the shared packing for a pointwise GEMM of `rows` x `k` by `k` x `n`.
        func share(_ rows: Int, _ depth: Int, _ columns: Int) {
            maxShared = max(maxShared, GEMM.sharedPackingCount(rows: rows, k: depth, n: columns, threads: threads))
        }
        /// Grows the workspace for conv `c` on an h x w input read through phase planes.
        func need(_ conv: ExecutionPlan.Conv, _ size: FeatureMapSizes.Size) {
            guard !conv.isPointwise else { return }
            let grid = conv.phases(size.height, size.width)
            maxPlanes = max(maxPlanes, grid.inputCount)
            maxGrid = max(maxGrid, conv.outChannels * grid.gridCount)
        }
        need(stem, sizes.input)
        for deep in plan.stemDeep { need(deep, sizes.stemConv) }
        for (b, layers) in plan.blocks.enumerated() {
            let size = sizes.blocks[b]
            let layout = PlaneLayout(height: size.height, width: size.width, border: border)
            maxBlock = max(maxBlock, plan.blockWidths[b] * layout.plane)
            for l in layers {
                if let bn = l.bottleneck {
                    // Planes, or panel-major (before a shifted conv): whole 32-column panels.
                    let panels = (layout.gemmColumns + GEMM.nr - 1) / GEMM.nr * GEMM.nr
                    maxBottleneck = max(maxBottleneck, bn.outChannels * max(layout.plane, panels))
                    share(bn.outChannels, bn.inChannels, layout.gemmColumns)
                } else {
                    maxScratch = max(maxScratch, l.norm.scale.count * layout.plane)
                }
                if border == 0, case .direct(let conv) = l.conv { need(conv, size) }
            }
            if b < plan.transitions.count {
                let transition = plan.transitions[b]
                let channels = transition.norm.scale.count
                if transition.poolFirst {
                    let pooled = sizes.blocks[b + 1]
                    let pooledLayout = PlaneLayout(height: pooled.height, width: pooled.width, border: border)
                    maxScratch = max(maxScratch, channels * pooledLayout.plane)
                    share(transition.conv.outChannels, channels, pooledLayout.gemmColumns)
                } else {
                    maxPacked = max(maxPacked, channels * size.area)
                    maxScratch = max(maxScratch, channels * size.area)
                    maxBottleneck = max(maxBottleneck, transition.conv.outChannels * sizes.transitionConvs[b].area)
                    need(transition.conv, size)
                }
            }
        }
        maxScratch = max(maxScratch, plan.headNorm.scale.count)
        if border > 0 { maxPacked = max(maxPacked, plan.headNorm.scale.count * sizes.head.area) }
        let stemStaged = plan.stemPool == nil ? border > 0 : stem.isPointwise
        // A deep or blurred stem goes stage by stage through two maps of the widest stem conv's output.
        let stemCount =
            plan.stemStagewise
            ? 2 * ([stem] + plan.stemDeep).map(\.outChannels).max()! * sizes.stemConv.area
            : stemStaged ? stem.outChannels * sizes.stemConv.area : 0
        // Sizes are bounded by the validated limits (16384 a side, 2^16 channels), so these products
        // cannot overflow; their sum is capped before anything is allocated.
        let headChannels = plan.headNorm.scale.count
        let headCount =
            plan.headPool == nil
            ? headChannels * sizes.head.area : plan.dense.reduce(headChannels) { $0 + $1.outFeatures }
        let counts = [
            stem.inChannels * sizes.input.area, maxBlock, maxBlock, maxScratch, maxBottleneck, maxPlanes, maxGrid,
            maxPacked, stemCount, headCount, maxShared,
        ]
        let bytes = counts.reduce(0, +) * 4
        guard bytes <= Self.maximumWorkspaceBytes else {
            throw ExecutionError.unsupported(
                """
                a \(height)x\(width) input needs \(bytes >> 20) MiB of workspace; the executor allows at most \
                \(Self.maximumWorkspaceBytes >> 20) MiB per image
                """
            )
        }
        // Winograd scratch (per thread, under 1 MB each): room for the largest transform, inputs and outputs.
        let winogradConvs = plan.blocks.joined().compactMap(\.conv.winograd)
        if let largest = winogradConvs.max(by: { $0.transform.outputSide < $1.transform.outputSide }) {
            let (inputs, outputs) = (winogradConvs.map(\.inChannels).max()!, winogradConvs.map(\.outChannels).max()!)
            winograd = (0..<threads).map { _ in
                WinogradConvolution.Scratch(largest.transform, inChannels: inputs, outChannels: outputs)
            }
        } else {
            winograd = []
        }
        image = AlignedBuffer(count: counts[0])
        blockA = AlignedBuffer(count: maxBlock)
        blockB = AlignedBuffer(count: maxBlock)
        scratch = AlignedBuffer(count: maxScratch)
        bottleneck = AlignedBuffer(count: maxBottleneck)
        planes = AlignedBuffer(count: maxPlanes)
        grid = AlignedBuffer(count: maxGrid)
        packed = AlignedBuffer(count: maxPacked)
        stemOut = AlignedBuffer(count: stemCount)
        headOut = AlignedBuffer(count: headCount)
        sharedPacking = AlignedBuffer(count: maxShared)
    }

    /// Starts over on a new image (CHW).
    package func reset(image values: ArraySlice<Float>) {
        values.withUnsafeBufferPointer { image.pointer.update(from: $0.baseAddress!, count: $0.count) }
        plan.inputTransform?.apply(toCHW: image.pointer, count: values.count)
        step = 0
        block = 0
        layer = 0
        pending = []
    }

    /// Runs the next canonical layer and returns its activation, or nil after the head.
    public func next() -> LayerActivation? {
        defer { step += 1 }
        if step == 0 { return runStem() }
        if block < plan.blocks.count {
            if layer < plan.blocks[block].count { return runLayer() }
            if block < plan.transitions.count { return runTransition() }
            block = plan.blocks.count
            return runHead()
        }
        return pending.isEmpty ? nil : pending.removeFirst()
    }

    // MARK: steps

    private func runStem() -> LayerActivation {
        if plan.stemStagewise { return runStemStagewise() }
        let stemConv = plan.stemConv
        let (h1, w1) = (sizes.stemConv.height, sizes.stemConv.width)
        let source = UnsafePointer(image.pointer)
        (mapHeight, mapWidth) = (sizes.blocks[0].height, sizes.blocks[0].width)
        if let stemPool = plan.stemPool {
            // Pooled straight from the conv's output grid (or its output, for a pointwise stem).
            let (dst, to, oh, ow) = (blockA.pointer + layout.interior, layout.strides, mapHeight, mapWidth)
            /// Pools output rows `rows` from the conv's output (rows `stride` apart).
            func pool(_ conv: UnsafePointer<Float>, stride: Int, rows: Range<Int>) {
                parallel(stemConv.outChannels) { r in
                    Elementwise.maxPool(
                        conv + r.lowerBound * h1 * stride, dst + r.lowerBound * to.plane, channels: r.count,
                        height: h1, width: w1, rowStride: stride, kernel: stemPool.kernel, stride: stemPool.stride,
                        padTop: stemPool.pads[0], padLeft: stemPool.pads[1], outHeight: oh, outWidth: ow, to: to,
                        outputRows: rows)
                }
            }
            if stemConv.isPointwise {
                convolve(stemConv, source, height, width, into: stemOut.pointer, relu: plan.stemReLU)
                pool(UnsafePointer(stemOut.pointer), stride: w1, rows: 0..<oh)
            } else {
                // The conv in bands of 16 output rows, each pooled as soon as its windows are complete,
                // while the band is still in cache.
                let phaseGrid = stemConv.phases(height, width)
                let planes = split(source, phaseGrid)
                let grid = self.grid.pointer
                var r0 = 0
                var pooled = 0
                while r0 < h1 {
                    let r1 = min(h1, r0 + 16)
                    GEMM.multiply(
                        stemConv.weights, phaseGrid.segments(planes + r0 * phaseGrid.phaseWidth),
                        n: (r1 - r0) * phaseGrid.phaseWidth,
                        grid + r0 * phaseGrid.phaseWidth, ldc: phaseGrid.gridCount,
                        bias: stemConv.bias.map { UnsafePointer($0.pointer) },
                        relu: plan.stemReLU, threads: threads)
                    // Output row y reads conv rows up to y * s - pad + k - 1.
                    let last = r1 - stemPool.kernel + stemPool.pads[0]
                    let ready = r1 == h1 ? oh : last < 0 ? pooled : min(oh, max(pooled, last / stemPool.stride + 1))
                    pool(UnsafePointer(grid), stride: phaseGrid.phaseWidth, rows: pooled..<ready)
                    (pooled, r0) = (ready, r1)
                }
            }
        } else {
            if plan.border == 0 {
                convolve(stemConv, source, height, width, into: blockA.pointer, relu: plan.stemReLU)
            } else {
                convolve(stemConv, source, height, width, into: stemOut.pointer, relu: plan.stemReLU)
                layout.unpack(stemOut.pointer, channels: 0..<stemConv.outChannels, into: blockA.pointer)
            }
        }
        offset = stemConv.outChannels
        return report("stem", blockA.pointer, channels: 0..<offset)
    }

    /// A deep or anti-aliased stem (timm's), one stage at a time: each conv into one of two maps in
    /// `stemOut`, the pool, the blur into the first block's buffer.
    private func runStemStagewise() -> LayerActivation {
        let size = sizes.stemConv
        (mapHeight, mapWidth) = (sizes.blocks[0].height, sizes.blocks[0].width)
        var current = stemOut.pointer
        var spare = stemOut.pointer + stemOut.count / 2
        convolve(plan.stemConv, UnsafePointer(image.pointer), height, width, into: current, relu: plan.stemReLU)
        for deep in plan.stemDeep {
            convolve(deep, UnsafePointer(current), size.height, size.width, into: spare, relu: true)
            swap(&current, &spare)
        }
        let channels = plan.stemDeep.last?.outChannels ?? plan.stemConv.outChannels
        let map = layout
        let (pooled, blur) = (sizes.stemPooled, plan.stemBlur)
        if let stemPool = plan.stemPool {
            let (src, dst) = (UnsafePointer(current), blur == nil ? blockA.pointer + map.interior : spare)
            let to =
                blur == nil ? map.strides : Elementwise.Strides(row: pooled.width, plane: pooled.area)
            parallel(channels) { r in
                Elementwise.maxPool(
                    src + r.lowerBound * size.area, dst + r.lowerBound * to.plane, channels: r.count,
                    height: size.height, width: size.width, kernel: stemPool.kernel, stride: stemPool.stride,
                    padTop: stemPool.pads[0], padLeft: stemPool.pads[1], outHeight: pooled.height,
                    outWidth: pooled.width, to: to)
            }
            if blur != nil { swap(&current, &spare) }
        } else if blur == nil {
            map.unpack(current, channels: 0..<channels, into: blockA.pointer)
        }
        if let blur {
            let (src, dst, to) = (UnsafePointer(current), blockA.pointer + map.interior, map.strides)
            let coefficients = blur.coefficients
            parallel(channels) { r in
                Elementwise.blurPool(
                    src + r.lowerBound * pooled.area, dst + r.lowerBound * to.plane, channels: r.count,
                    height: pooled.height, width: pooled.width, coefficients: coefficients, stride: blur.stride,
                    padding: blur.padding, outHeight: mapHeight, outWidth: mapWidth, to: to)
            }
        }
        offset = channels
        return report("stem", blockA.pointer, channels: 0..<offset)
    }

    private func runLayer() -> LayerActivation {
        let step = plan.blocks[block][layer]
        let map = layout
        let current = blockA.pointer
        let out = current + offset * map.plane
        // Before a shifted conv the bottleneck's GEMM writes its output panel-major, the layout that
        // conv's GEMM then reads in place; before any other conv, in planes.
        let panelMajor = map.border > 0 && step.conv.winograd == nil
        if let bottleneckConv = step.bottleneck {
            // BN-ReLU of the block's features is applied while the GEMM packs them.
            GEMM.multiply(
                bottleneckConv.weights, current + map.interior, ldb: map.plane, n: map.gemmColumns,
                bottleneck.pointer + (panelMajor ? 0 : map.interior), ldc: panelMajor ? GEMM.nr : map.plane,
                cPanelStride: panelMajor ? bottleneckConv.outChannels * GEMM.nr : GEMM.nr,
                bias: bottleneckConv.bias.map { UnsafePointer($0.pointer) }, relu: true,
                scale: step.norm.scale.pointer, shift: step.norm.shift.pointer, threads: threads,
                packing: sharedPacking.pointer)
        } else {
            batchNormReLU(current, scratch.pointer, channels: offset, size: map.plane, step.norm)
        }
        switch step.conv {
        case .winograd(let weights, let bias):
            // Straight from the bottleneck's planes into the block's next k channels (the planes'
            // borders may be read, their values unused).
            WinogradConvolution.run(
                weights, bottleneck.pointer + map.interior, inputStride: map.plane, height: mapHeight, width: mapWidth,
                into: out + map.interior, outputStride: map.plane, bias: bias.map { UnsafePointer($0.pointer) },
                scratch: winograd, threads: threads, inputMargin: map.interior)
        case .direct(let conv) where map.border > 0:
            // The conv writes straight into the block's next k channels.
            let input =
                step.bottleneck.map {
                    GEMM.segments(
                        bottleneck.pointer, ldb: GEMM.nr, k: $0.outChannels, panelStride: $0.outChannels * GEMM.nr)
                } ?? GEMM.segments(scratch.pointer + map.interior, ldb: map.plane, k: offset)
            ShiftedConvolution.run(
                conv.weights, outChannels: conv.outChannels, kernel: conv.kernel, input, layout: map,
                into: out, bias: conv.bias.map { UnsafePointer($0.pointer) }, threads: threads)
        case .direct(let conv):
            convolve(
                conv, step.bottleneck == nil ? scratch.pointer : bottleneck.pointer, mapHeight, mapWidth, into: out,
                relu: false)
        }
        let growth = step.conv.outChannels
        let result = report(
            CanonicalLayer.denseLayer(block: block + 1, layer: layer + 1).name, current,
            channels: offset..<(offset + growth)
        )
        offset += growth
        layer += 1
        return result
    }

    private func runTransition() -> LayerActivation {
        let transition = plan.transitions[block]
        let map = layout
        let current = blockA.pointer
        let next = blockB.pointer
        let after = sizes.blocks[block + 1]
        if transition.poolFirst {
            let pooled = PlaneLayout(height: after.height, width: after.width, border: plan.border)
            let (src, dst, height, width) = (current + map.interior, scratch.pointer, mapHeight, mapWidth)
            parallel(offset) { r in
                Elementwise.batchNormReLUAvgPool2(
                    src + r.lowerBound * map.plane, dst + pooled.interior + r.lowerBound * pooled.plane,
                    channels: r.count, height: height, width: width,
                    scale: transition.norm.scale.pointer + r.lowerBound,
                    shift: transition.norm.shift.pointer + r.lowerBound,
                    from: map.strides, to: pooled.strides)
            }
            GEMM.multiply(
                transition.conv.weights, scratch.pointer + pooled.interior, ldb: pooled.plane, n: pooled.gemmColumns,
                next + pooled.interior, ldc: pooled.plane, bias: transition.conv.bias.map { UnsafePointer($0.pointer) },
                threads: threads,
                packing: sharedPacking.pointer)
        } else {
            // Any other transition (no exporter DenseKit knows makes one), on packed copies.
            map.pack(current, channels: 0..<offset, into: packed.pointer)
            batchNormReLU(
                packed.pointer, scratch.pointer, channels: offset, size: mapHeight * mapWidth, transition.norm)
            let (ch, cw) = (sizes.transitionConvs[block].height, sizes.transitionConvs[block].width)
            convolve(transition.conv, scratch.pointer, mapHeight, mapWidth, into: bottleneck.pointer, relu: false)
            let pooled = Reference.pool(
                Array(UnsafeBufferPointer(start: bottleneck.pointer, count: transition.conv.outChannels * ch * cw)),
                channels: transition.conv.outChannels, height: ch, width: cw, max: transition.pool.kind == .max,
                kernel: transition.pool.kernel, stride: transition.pool.stride, pads: transition.pool.pads,
                countIncludePad: transition.pool.countIncludePad)
            let target = PlaneLayout(height: after.height, width: after.width, border: plan.border)
            pooled.values.withUnsafeBufferPointer {
                target.unpack($0.baseAddress!, channels: 0..<transition.conv.outChannels, into: next)
            }
        }
        swap(&blockA, &blockB)
        (mapHeight, mapWidth) = (after.height, after.width)
        offset = transition.conv.outChannels
        block += 1
        layer = 0
        return report(CanonicalLayer.transition(block).name, blockA.pointer, channels: 0..<offset)
    }

    /// The final BN-ReLU, the global pool (or the feature map itself), then each dense layer; returns
    /// the first head layer and leaves the others to the next calls.
    private func runHead() -> LayerActivation {
        let channels = plan.headNorm.scale.count
        let size = mapHeight * mapWidth
        var features = UnsafePointer(blockA.pointer)
        if plan.border > 0 {
            layout.pack(blockA.pointer, channels: 0..<channels, into: packed.pointer)
            features = UnsafePointer(packed.pointer)
        }
        let out = headOut.pointer
        guard let pool = plan.headPool else {
            batchNormReLU(features, out, channels: channels, size: size, plan.headNorm)
            return LayerActivation(
                name: "head", channels: channels, height: mapHeight, width: mapWidth,
                values: UnsafeBufferPointer(start: out, count: channels * size)
            )
        }
        let (scale, shift) = (UnsafePointer(plan.headNorm.scale.pointer), UnsafePointer(plan.headNorm.shift.pointer))
        parallel(channels) { r in
            Elementwise.batchNormReLUGlobalPool(
                features + r.lowerBound * size, out + r.lowerBound, channels: r.count, size: size,
                scale: scale + r.lowerBound, shift: shift + r.lowerBound, max: pool == .max)
        }
        var layers = [
            LayerActivation(
                name: "head", channels: channels, height: 1, width: 1,
                values: UnsafeBufferPointer(start: out, count: channels))
        ]
        var offset = 0
        for (i, d) in plan.dense.enumerated() {
            let inputVector = UnsafePointer(out + offset)
            let outputVector = out + offset + d.inFeatures
            // The classifier's weights (4 MB for ImageNet) come from memory each run: split across the threads.
            parallel(d.outFeatures) { r in
                Elementwise.matVec(
                    d.weight.pointer + r.lowerBound * d.inFeatures, inputVector,
                    d.bias.map { UnsafePointer($0.pointer + r.lowerBound) },
                    rows: r.count, cols: d.inFeatures, into: outputVector + r.lowerBound)
            }
            let values = UnsafeMutableBufferPointer(start: outputVector, count: d.outFeatures)
            d.activation.apply(values)
            if i == 0 { layers = [] }
            layers.append(
                LayerActivation(
                    name: plan.headNames[i], channels: d.outFeatures, height: 1, width: 1,
                    values: UnsafeBufferPointer(values)))
            offset += d.inFeatures
        }
        pending = Array(layers.dropFirst())
        return layers[0]
    }

    /// The activation of `channels` of the map at `base`, packed CHW; its values are empty when the
    /// execution does not report activations.
    private func report(_ name: String, _ base: UnsafeMutablePointer<Float>, channels: Range<Int>) -> LayerActivation {
        let map = layout
        let count = channels.count * mapHeight * mapWidth
        var values = UnsafeBufferPointer<Float>(start: nil, count: 0)
        if reportsActivations {
            if map.border == 0 {
                values = UnsafeBufferPointer(start: base + channels.lowerBound * mapHeight * mapWidth, count: count)
            } else {
                if packed.count < count { packed = AlignedBuffer(count: count) }
                map.pack(base, channels: channels, into: packed.pointer)
                values = UnsafeBufferPointer(start: packed.pointer, count: count)
            }
        }
        return LayerActivation(name: name, channels: channels.count, height: mapHeight, width: mapWidth, values: values)
    }

    // MARK: helpers

    /// Runs `body` on contiguous channel ranges split across the executor's threads.
    private func parallel(_ channels: Int, _ body: (Range<Int>) -> Void) {
        WorkerPool.shared(threads: threads).parallelFor(channels, body)
    }

    /// conv(src CHW of size h x w) -> dst CHW: a plain GEMM for pointwise convs, otherwise one GEMM
    /// over the input's phase planes into the wide grid, compacted into `dst`.
    private func convolve(
        _ conv: ExecutionPlan.Conv, _ src: UnsafePointer<Float>, _ inputHeight: Int, _ inputWidth: Int,
        into dst: UnsafeMutablePointer<Float>, relu: Bool
    ) {
        if conv.isPointwise {
            GEMM.multiply(
                conv.weights, src, ldb: inputHeight * inputWidth, n: inputHeight * inputWidth, dst,
                ldc: inputHeight * inputWidth,
                bias: conv.bias.map { UnsafePointer($0.pointer) }, relu: relu, threads: threads)
            return
        }
        let phaseGrid = conv.phases(inputHeight, inputWidth)
        GEMM.multiply(
            conv.weights, phaseGrid.segments(split(src, phaseGrid)), n: phaseGrid.gridCount, grid.pointer,
            ldc: phaseGrid.gridCount,
            bias: conv.bias.map { UnsafePointer($0.pointer) }, relu: relu, threads: threads)
        let source = grid.pointer
        parallel(conv.outChannels) { phaseGrid.compact(source, channels: $0, into: dst) }
    }

    /// The input's zero-padded phase planes for `phaseGrid`, in `planes`.
    private func split(_ src: UnsafePointer<Float>, _ phaseGrid: PhaseConvolution) -> UnsafePointer<Float> {
        let target = planes.pointer
        parallel(phaseGrid.channels) { phaseGrid.split(src, channels: $0, into: target) }
        phaseGrid.zeroSlack(target)
        return UnsafePointer(target)
    }

    private func batchNormReLU(
        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, channels: Int, size: Int,
        _ norm: ExecutionPlan.Affine
    ) {
        parallel(channels) { r in
            Elementwise.batchNormReLU(
                src + r.lowerBound * size, dst + r.lowerBound * size, channels: r.count, size: size,
                scale: norm.scale.pointer + r.lowerBound, shift: norm.shift.pointer + r.lowerBound)
        }
    }
}
