import DenseKitKernels

/// The SIMD executor: runs a canonical DenseNet on float32 NCHW input, one image at a time.
///
/// Each dense block has one preallocated buffer into which every layer writes its k channels in place
/// (no concat copies); transitions pool before their 1x1 conv; BN-ReLU is applied while preparing each
/// GEMM operand. `threads` splits every GEMM's columns; 1 means no other thread is used.
/// The workspace for one input size is kept between runs (fresh memory costs page faults), so an
/// executor runs one batch at a time.
public final class Executor: @unchecked Sendable {
    let plan: ExecutionPlan
    public let threads: Int
    public let classes: Int
    public let inputChannels: Int

    public init(_ net: DenseNet, threads: Int = 1) {
        plan = ExecutionPlan(net)
        self.threads = max(1, threads)
        classes = net.classes
        inputChannels = net.stem.conv.inChannels
    }

    public var layerNames: [String] { plan.layerNames }

    /// Runs a batch: `input` NCHW [batch, C, height, width]; returns [batch, classes].
    /// `observe` sees every canonical layer's activation of every image, in order.
    public func run(_ input: [Float], batch: Int, height: Int, width: Int,
                    observe: ((Int, LayerActivation) -> Void)? = nil) throws -> [Float] {
        let per = inputChannels * height * width
        guard batch > 0, input.count == batch * per else {
            throw ExecutionError.inputShape(expected: "[N, \(inputChannels), \(height), \(width)]", found: [input.count])
        }
        var output: [Float] = []
        output.reserveCapacity(batch * classes)
        let execution = try workspace(height, width)
        for n in 0..<batch {
            execution.reset(image: input[(n * per)..<((n + 1) * per)])
            while let activation = try execution.next() {
                observe?(n, activation)
                if activation.name == "head" { output += activation.values }
            }
        }
        return output
    }

    /// Starts a step-by-step execution of one image (CHW), for comparing two models layer by layer.
    public func start(image: ArraySlice<Float>, height: Int, width: Int) throws -> ImageExecution {
        guard image.count == inputChannels * height * width else {
            throw ExecutionError.inputShape(expected: "[\(inputChannels), \(height), \(width)]", found: [image.count])
        }
        let e = try ImageExecution(plan: plan, height: height, width: width, threads: threads)
        e.reset(image: image)
        return e
    }

    private var cached: ImageExecution?

    /// The workspace for this input size, reused from the previous run when the size is the same.
    private func workspace(_ height: Int, _ width: Int) throws -> ImageExecution {
        if let c = cached, c.height == height, c.width == width { return c }
        let e = try ImageExecution(plan: plan, height: height, width: width, threads: threads)
        cached = e
        return e
    }
}

/// One image going through the network a canonical layer at a time; the workspace is reused by `reset`.
public final class ImageExecution {
    let plan: ExecutionPlan
    let threads: Int
    let height: Int, width: Int
    private let image: AlignedBuffer
    private var blockA: AlignedBuffer, blockB: AlignedBuffer
    private let scratch: AlignedBuffer, bottleneck: AlignedBuffer, stemOut: AlignedBuffer
    /// A conv's input as zero-padded phase planes and its wide output grid (`PhaseConvolution`).
    private let planes: AlignedBuffer, grid: AlignedBuffer
    private let logits: AlignedBuffer

    private var step = 0
    private var block = 0, layer = 0
    private var offset = 0
    private var h = 0, w = 0

    init(plan: ExecutionPlan, height: Int, width: Int, threads: Int) throws {
        self.plan = plan
        self.threads = threads
        self.height = height
        self.width = width
        // Size every buffer for this input size, checking that every stage has a positive size.
        let stem = plan.stemConv
        guard height > 0, width > 0 else { throw ExecutionError.inputShape(expected: "positive height and width", found: [height, width]) }
        let (h1, w1) = stem.outputSize(height, width)
        guard h1 > 0, w1 > 0 else { throw ExecutionError.unsupported("input \(height)x\(width) is too small for the stem") }
        var (h, w) = (h1, w1)
        if let p = plan.stemPool { (h, w) = p.outputSize(h1, w1) }
        var maxBlock = 0, maxScratch = 0, maxBottleneck = 0, maxPlanes = 0, maxGrid = 0
        /// Grows the workspace for conv `c` on an h x w input.
        func need(_ c: ExecutionPlan.Conv, _ h: Int, _ w: Int) {
            guard !c.isPointwise else { return }
            let g = c.phases(h, w)
            maxPlanes = max(maxPlanes, g.inputCount)
            maxGrid = max(maxGrid, c.outChannels * g.gridCount)
        }
        need(stem, height, width)
        for (b, layers) in plan.blocks.enumerated() {
            guard h > 0, w > 0 else { throw ExecutionError.unsupported("input \(height)x\(width) is too small: block\(b + 1) would be empty") }
            let hw = h * w
            maxBlock = max(maxBlock, plan.blockWidths[b] * hw)
            for l in layers {
                maxScratch = max(maxScratch, l.norm.scale.count * hw)
                if let bn = l.bottleneck { maxBottleneck = max(maxBottleneck, bn.outChannels * hw) }
                need(l.conv, h, w)
                guard l.conv.outputSize(h, w) == (h, w) else {
                    throw ExecutionError.unsupported("block\(b + 1): a dense layer's conv changes the spatial size")
                }
            }
            if b < plan.transitions.count {
                let t = plan.transitions[b]
                maxScratch = max(maxScratch, t.norm.scale.count * hw)
                if !t.poolFirst {
                    let (ch, cw) = t.conv.outputSize(h, w)
                    maxBottleneck = max(maxBottleneck, t.conv.outChannels * ch * cw)
                    need(t.conv, h, w)
                    (h, w) = t.pool.outputSize(ch, cw)
                } else {
                    (h, w) = (h / 2, w / 2)
                }
            }
        }
        maxScratch = max(maxScratch, plan.headNorm.scale.count)
        image = AlignedBuffer(count: stem.inChannels * height * width)
        blockA = AlignedBuffer(count: maxBlock)
        blockB = AlignedBuffer(count: maxBlock)
        scratch = AlignedBuffer(count: maxScratch)
        bottleneck = AlignedBuffer(count: maxBottleneck)
        planes = AlignedBuffer(count: maxPlanes)
        grid = AlignedBuffer(count: maxGrid)
        stemOut = AlignedBuffer(count: plan.stemPool != nil && stem.isPointwise ? stem.outChannels * h1 * w1 : 0)
        logits = AlignedBuffer(count: plan.classes)
    }

    /// Starts over on a new image (CHW).
    func reset(image values: ArraySlice<Float>) {
        values.withUnsafeBufferPointer { image.pointer.update(from: $0.baseAddress!, count: $0.count) }
        step = 0
        block = 0
        layer = 0
    }

    /// Runs the next canonical layer and returns its activation, or nil after the head.
    public func next() throws -> LayerActivation? {
        defer { step += 1 }
        if step == 0 { return runStem() }
        if block < plan.blocks.count {
            if layer < plan.blocks[block].count { return runLayer() }
            if block < plan.transitions.count { return try runTransition() }
            block = plan.blocks.count
            return runHead()
        }
        return nil
    }

    // MARK: steps

    private func runStem() -> LayerActivation {
        let c = plan.stemConv
        let (h1, w1) = c.outputSize(height, width)
        let source = UnsafePointer(image.pointer)
        if let p = plan.stemPool {
            // Pooled straight from the conv's output grid (or its output, for a pointwise stem).
            let (oh, ow) = p.outputSize(h1, w1)
            var conv = UnsafePointer(stemOut.pointer), stride = w1
            if c.isPointwise {
                convolve(c, source, height, width, into: stemOut.pointer, relu: plan.stemReLU)
            } else {
                stride = convolveToGrid(c, source, height, width, relu: plan.stemReLU).phaseWidth
                conv = UnsafePointer(grid.pointer)
            }
            let (dst, planeIn) = (blockA.pointer, h1 * stride)
            parallel(c.outChannels) { r in
                Elementwise.maxPool(conv + r.lowerBound * planeIn, dst + r.lowerBound * oh * ow, channels: r.count,
                                    height: h1, width: w1, rowStride: stride, kernel: p.kernel, stride: p.stride,
                                    padTop: p.pads[0], padLeft: p.pads[1], outHeight: oh, outWidth: ow)
            }
            (h, w) = (oh, ow)
        } else {
            convolve(c, source, height, width, into: blockA.pointer, relu: plan.stemReLU)
            (h, w) = (h1, w1)
        }
        offset = c.outChannels
        return activation("stem", blockA.pointer, channels: offset)
    }

    private func runLayer() -> LayerActivation {
        let l = plan.blocks[block][layer]
        let hw = h * w
        let current = blockA.pointer
        var source = UnsafePointer(scratch.pointer)
        if let b = l.bottleneck {
            // BN-ReLU of the block's features is applied while the GEMM packs them.
            GEMM.multiply(b.weights, current, ldb: hw, n: hw, bottleneck.pointer, ldc: hw,
                          bias: b.bias.map { UnsafePointer($0.pointer) }, relu: true,
                          scale: l.norm.scale.pointer, shift: l.norm.shift.pointer, threads: threads)
            source = UnsafePointer(bottleneck.pointer)
        } else {
            batchNormReLU(current, scratch.pointer, channels: offset, size: hw, l.norm)
        }
        let out = current + offset * hw
        convolve(l.conv, source, h, w, into: out, relu: false)
        let name = "block\(block + 1).layer\(layer + 1)"
        let result = LayerActivation(name: name, channels: l.conv.outChannels, height: h, width: w,
                                     values: UnsafeBufferPointer(start: out, count: l.conv.outChannels * hw))
        offset += l.conv.outChannels
        layer += 1
        return result
    }

    private func runTransition() throws -> LayerActivation {
        let t = plan.transitions[block]
        let current = blockA.pointer, next = blockB.pointer
        if t.poolFirst {
            let (oh, ow) = (h / 2, w / 2)
            let (src, dst, height, width) = (current, scratch.pointer, h, w)
            parallel(offset) { r in
                Elementwise.batchNormReLUAvgPool2(src + r.lowerBound * height * width, dst + r.lowerBound * oh * ow, channels: r.count,
                                                  height: height, width: width, scale: t.norm.scale.pointer + r.lowerBound,
                                                  shift: t.norm.shift.pointer + r.lowerBound)
            }
            GEMM.multiply(t.conv.weights, scratch.pointer, ldb: oh * ow, n: oh * ow, next, ldc: oh * ow,
                          bias: t.conv.bias.map { UnsafePointer($0.pointer) }, threads: threads)
            (h, w) = (oh, ow)
        } else {
            batchNormReLU(current, scratch.pointer, channels: offset, size: h * w, t.norm)
            let (ch, cw) = t.conv.outputSize(h, w)
            convolve(t.conv, scratch.pointer, h, w, into: bottleneck.pointer, relu: false)
            let pooled = Reference.pool(Array(UnsafeBufferPointer(start: bottleneck.pointer, count: t.conv.outChannels * ch * cw)),
                                        channels: t.conv.outChannels, height: ch, width: cw, max: t.pool.kind == .max,
                                        kernel: t.pool.kernel, stride: t.pool.stride, pads: t.pool.pads,
                                        countIncludePad: t.pool.countIncludePad)
            pooled.values.withUnsafeBufferPointer { next.update(from: $0.baseAddress!, count: $0.count) }
            (h, w) = (pooled.height, pooled.width)
        }
        swap(&blockA, &blockB)
        offset = t.conv.outChannels
        block += 1
        layer = 0
        return activation("transition\(block)", blockA.pointer, channels: offset)
    }

    private func runHead() -> LayerActivation {
        let c = plan.headNorm.scale.count
        Elementwise.batchNormReLUMean(blockA.pointer, scratch.pointer, channels: c, size: h * w,
                                      scale: plan.headNorm.scale.pointer, shift: plan.headNorm.shift.pointer)
        Elementwise.matVec(plan.classifierWeight.pointer, scratch.pointer, plan.classifierBias.map { UnsafePointer($0.pointer) },
                           rows: plan.classes, cols: c, into: logits.pointer)
        let y = UnsafeMutableBufferPointer(start: logits.pointer, count: plan.classes)
        if plan.softmax {
            let probabilities = Reference.softmax(Array(y))
            for (i, p) in probabilities.enumerated() { y[i] = p }
        }
        return LayerActivation(name: "head", channels: plan.classes, height: 1, width: 1, values: UnsafeBufferPointer(y))
    }

    // MARK: helpers

    /// Runs `body` on contiguous channel ranges split across the executor's threads.
    private func parallel(_ channels: Int, _ body: (Range<Int>) -> Void) {
        WorkerPool.shared(threads: threads).parallelFor(channels, body)
    }

    /// conv(src CHW of size h x w) -> dst CHW: a plain GEMM for pointwise convs, otherwise one GEMM
    /// over the input's phase planes into the wide grid, compacted into `dst`.
    private func convolve(_ c: ExecutionPlan.Conv, _ src: UnsafePointer<Float>, _ h: Int, _ w: Int,
                          into dst: UnsafeMutablePointer<Float>, relu: Bool) {
        if c.isPointwise {
            GEMM.multiply(c.weights, src, ldb: h * w, n: h * w, dst, ldc: h * w,
                          bias: c.bias.map { UnsafePointer($0.pointer) }, relu: relu, threads: threads)
            return
        }
        let g = convolveToGrid(c, src, h, w, relu: relu)
        let source = grid.pointer
        parallel(c.outChannels) { g.compact(source, channels: $0, into: dst) }
    }

    /// A non-pointwise conv into `grid` (rows `phaseWidth` wide), from the input's phase planes.
    private func convolveToGrid(_ c: ExecutionPlan.Conv, _ src: UnsafePointer<Float>, _ h: Int, _ w: Int,
                                relu: Bool) -> PhaseConvolution {
        let g = c.phases(h, w)
        let target = planes.pointer
        parallel(c.inChannels) { g.split(src, channels: $0, into: target) }
        g.zeroSlack(target)
        GEMM.multiply(c.weights, g.segments(target), n: g.gridCount, grid.pointer, ldc: g.gridCount,
                      bias: c.bias.map { UnsafePointer($0.pointer) }, relu: relu, threads: threads)
        return g
    }

    private func batchNormReLU(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, channels: Int, size: Int,
                               _ norm: ExecutionPlan.Affine) {
        parallel(channels) { r in
            Elementwise.batchNormReLU(src + r.lowerBound * size, dst + r.lowerBound * size, channels: r.count, size: size,
                                      scale: norm.scale.pointer + r.lowerBound, shift: norm.shift.pointer + r.lowerBound)
        }
    }

    private func activation(_ name: String, _ p: UnsafeMutablePointer<Float>, channels: Int) -> LayerActivation {
        LayerActivation(name: name, channels: channels, height: h, width: w,
                        values: UnsafeBufferPointer(start: p, count: channels * h * w))
    }
}
