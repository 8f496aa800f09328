import DenseKitGraph
import DenseKitKernels

/// Runs a quantised DenseNet (what `DenseNet.isQuantized` says) as the framework that made it runs it (its
/// `integerArithmetic`): every op whose input, weights and output are quantised computes on integer codes (int32
/// accumulation, then `OnnxruntimeArithmetic`'s or `TFLiteArithmetic`'s requantisation); everything else (an
/// onnxruntime BatchNorm, a float layer in a partly quantised model) computes in float on dequantised values and
/// quantises its output where the model says so. TensorFlow Lite's int8 BatchNorm (MUL then ADD) computes on codes,
/// and its dynamic-range convs and linear layers quantise their float input on the fly (its hybrid kernels).
/// Activations go from op to op as codes or as floats, whichever the op before produced: a max pool keeps codes, an
/// onnxruntime BatchNorm gives floats.
///
/// One image at a time, the canonical layers in order; per layer it reports the dequantised activation.
public struct QuantizedExecutor: Sendable {
    package let net: DenseNet
    /// Whose arithmetic the quantised layers run with (the model's own, or the int8 model's whose layers
    /// `diff --sensitivity` swaps into a float one).
    package let arithmetic: IntegerArithmetic

    /// Each integer weight (codes less zero points) packed for `IntegerGEMM`, by the tensor's name (a name two
    /// tensors share is left out, and prepared when used).
    private let prepared: [String: IntegerGEMM.Weights]

    public init(_ net: DenseNet, arithmetic: IntegerArithmetic? = nil) {
        self.net = net
        self.arithmetic = arithmetic ?? net.integerArithmetic
        var prepared: [String: IntegerGEMM.Weights] = [:]
        var shared = Set<String>()
        for op in net.weightedOps {
            guard let weight = op.conv?.weight ?? op.linear?.weight, let codes = weight.quantized,
                Self.isEightBit(codes),
                let rows = weight.shape.first, rows > 0
            else { continue }
            if prepared[weight.name] != nil { shared.insert(weight.name) }
            let arrangement = op.conv.map {
                IntegerGEMM.Arrangement.of(kernel: $0.kernel, stride: $0.stride, pads: $0.pads)
            }
            prepared[weight.name] = Self.prepare(
                codes, rows: rows, k: codes.codes.count / rows, arrangement: arrangement ?? .columns)
        }
        for name in shared { prepared[name] = nil }
        self.prepared = prepared
    }

    /// Whether the integer kernels take `weights`: 8-bit codes, per tensor or per output channel (axis 0).
    private static func isEightBit(_ weights: QuantizedCodes) -> Bool {
        weights.quantization.axis ?? 0 == 0 && weights.quantization.storage != .int32
    }

    /// Weight codes less their zero points (per row when per channel), packed for `arrangement`.
    private static func prepare(
        _ weights: QuantizedCodes, rows: Int, k: Int, arrangement: IntegerGEMM.Arrangement
    ) -> IntegerGEMM.Weights {
        let wq = weights.quantization
        var a = weights.codes
        for row in 0..<rows {
            let zero = wq.zeroPoint(row)
            for p in 0..<k { a[row * k + p] &-= zero }
        }
        return IntegerGEMM.Weights(a, rows: rows, k: k, arrangement: arrangement)
    }

    /// An activation, CHW: float values, or codes of `quantization`.
    struct Map {
        var channels: Int
        var height: Int
        var width: Int
        var floats: [Float] = []
        var codes: [Int32] = []
        var quantization: Quantization? = nil

        var plane: Int { height * width }
    }

    /// Throws when a `height` x `width` input does not fit the model, or its largest convolution's columns
    /// (input channels x kernel area x map area, int32, bounded by the input's area) would need more memory than the
    /// float executor's workspace may take.
    public func check(height: Int, width: Int) throws {
        _ = try FeatureMapSizes(net, height: height, width: width)
        let columns = net.weightedOps.compactMap { $0.conv.map { $0.inChannels * $0.kernel * $0.kernel } }.max() ?? 0
        let bytes = columns * height * width * 4
        guard bytes <= ImageExecution.maximumWorkspaceBytes else {
            throw ExecutionError.unsupported(
                "a \(height)x\(width) input needs up to \(bytes >> 20) MiB for the integer executor's columns; it "
                    + "allows at most \(ImageExecution.maximumWorkspaceBytes >> 20) MiB per image")
        }
    }

    /// A canonical layer's activation, dequantised, and the saturation of its codes when it has some.
    public struct ObservedLayer {
        public var name: String
        public var channels: Int
        public var height: Int
        public var width: Int
        public var values: [Float]
        public var saturation: Float?
    }

    /// One image, CHW, of a size `check` accepted; `observe` sees every canonical layer's activation; returns the
    /// output.
    public func run(image: [Float], height: Int, width: Int, observe: ((ObservedLayer) -> Void)? = nil) -> [Float] {
        var state = start(image: image, height: height, width: width)
        for step in net.steps {
            if let output = advance(&state, step, observe: observe) { return output }
        }
        return []  // not reached: the walk ends with the head
    }

    /// What the network holds between two canonical layers: the map the next one reads, and the current dense
    /// block's features (its input and each layer's new channels) as each was given, codes or floats.
    public struct State {
        var map: Map
        var parts: [Map] = []
    }

    /// The state before the stem: the image (CHW) with the model's input transform applied, on its codes when the
    /// model computes it on codes.
    public func start(image: [Float], height: Int, width: Int) -> State {
        start(image: image, height: height, width: width, transform: net.inputTransform)
    }

    /// The state before the stem with `transform` applied (`diff --sensitivity` gives an int8 model's, on codes, to
    /// the float model whose stem it swaps for the int8 one).
    package func start(image: [Float], height: Int, width: Int, transform: InputTransform?) -> State {
        var map = Map(channels: net.stem.conv.inChannels, height: height, width: width, floats: image)
        if let steps = transform?.quantized {
            let perChannel = steps.steps.contains { $0.constants.count > 1 }
            let tables = (0..<(perChannel ? map.channels : 1)).map { steps.codeTable(arithmetic, channel: $0) }
            let low = steps.input.storage.range.lowerBound
            var result = Map(channels: map.channels, height: height, width: width, quantization: steps.output)
            // Codes of the input's quantisation are within its range (it saturates): every index is in the table.
            result.codes = Self.codes(map, steps.input).codes
            for c in 0..<map.channels {
                let table = tables[perChannel ? c : 0]
                for i in (c * map.plane)..<((c + 1) * map.plane) {
                    result.codes[i] = table[Int(result.codes[i] &- low)]
                }
            }
            return State(map: result)
        }
        if let transform {
            for c in 0..<map.channels {
                for i in 0..<map.plane {
                    map.floats[c * map.plane + i] =
                        map.floats[c * map.plane + i] * transform.scale[c] + transform.offset[c]
                }
            }
        }
        return State(map: map)
    }

    /// Runs one canonical layer, `step` (of this model, or the same layer of another model of the same
    /// architecture: `diff --sensitivity` swaps in an int8 model's), on `state`; returns the output after the head.
    public func advance(_ state: inout State, _ step: LayerStep, observe: ((ObservedLayer) -> Void)? = nil)
        -> [Float]?
    {
        // What nobody observes is not made: each layer's dequantised copy and saturation.
        func report(_ name: String, _ m: Map) {
            observe?(
                ObservedLayer(
                    name: name, channels: m.channels, height: m.height, width: m.width, values: Self.floats(m).floats,
                    saturation: Self.saturation(m)))
        }
        switch step {
        case .stem(let stem):
            var map = state.map
            for (index, part) in stem.convolutions.enumerated() {
                map = convolve(map, part.conv)
                let followedByReLU = index > 0 || stem.relu
                if let norm = part.norm {
                    map = normalise(map, norm, relu: followedByReLU)
                } else if followedByReLU {
                    Self.applyReLU(&map)
                }
            }
            if let stemPool = stem.pool { map = pool(map, stemPool) }
            if let blur = stem.blur {
                let floats = Self.floats(map)
                let result = Reference.blurPool(
                    floats.floats, channels: map.channels, height: map.height, width: map.width,
                    coefficients: blur.coefficients, stride: blur.stride, padding: blur.padding)
                map = Map(channels: map.channels, height: result.height, width: result.width, floats: result.values)
            }
            state = State(map: map, parts: [map])
            report(step.layer.name, map)
        case .denseLayer(let layer, _, _, _):
            var branch: Map
            if let bottleneck = layer.bottleneck {
                branch = normalisedConvolution(state.parts, layer.norm, bottleneck.conv)
                if let norm = bottleneck.norm { branch = normalise(branch, norm) } else { Self.applyReLU(&branch) }
            } else {
                branch = normaliseConcatenation(state.parts, layer.norm)
            }
            let new = convolve(branch, layer.conv)
            state.parts.append(new)
            report(step.layer.name, new)
        case .transition(let transition, _):
            let normed = normaliseConcatenation(state.parts, transition.norm)
            let map = pool(convolve(normed, transition.conv), transition.pool)
            state = State(map: map, parts: [map])
            report(step.layer.name, map)
        case .head(let head):
            let output = runHead(head, concatenate(state.parts, head.norm.inputQuantization), report: report)
            // A quantised output is its codes' values (onnxruntime's QuantizeLinear, TensorFlow Lite's int8 output).
            guard let q = head.outputQuantization else { return output }
            return Self.floats(
                Self.codes(Map(channels: output.count, height: 1, width: 1, floats: output), q)
            ).floats
        }
        return nil
    }

    private func runHead(_ head: Head, _ input: Map, report: (String, Map) -> Void) -> [Float] {
        let normed = normalise(input, head.norm)
        guard let headPool = head.pool else {
            report("head", normed)
            return Self.floats(normed).floats
        }
        var out = globalPool(normed, headPool, to: head.dense.first?.linear.inputQuantization)
        for (dense, name) in zip(head.dense, head.layerNames) {
            out = linear(out, dense.linear)
            var values = Self.floats(out).floats
            values.withUnsafeMutableBufferPointer { dense.activation.apply($0) }
            out = Map(channels: values.count, height: 1, width: 1, floats: values)
            report(name, out)
        }
        if head.dense.isEmpty { report("head", out) }
        return Self.floats(out).floats
    }

    // MARK: representations

    /// The share of `m`'s codes at its type's limits, the lowest not counted where it is the zero point (a ReLU's
    /// zeros); nil for floats.
    static func saturation(_ m: Map) -> Float? {
        guard let q = m.quantization, !m.codes.isEmpty else { return nil }
        let (low, high) = (q.storage.range.lowerBound, q.storage.range.upperBound)
        let countsLow = q.zeroPoints[0] != low
        let saturated = m.codes.reduce(0) { $0 + ($1 == high || (countsLow && $1 == low) ? 1 : 0) }
        return Float(saturated) / Float(m.codes.count)
    }

    /// `m` as float values.
    static func floats(_ m: Map) -> Map {
        guard let q = m.quantization else { return m }
        var result = Map(channels: m.channels, height: m.height, width: m.width)
        let (scale, zero) = (q.scales[0], q.zeroPoints[0])
        result.floats = [Float](unsafeUninitializedCapacity: m.codes.count) { target, count in
            m.codes.withUnsafeBufferPointer { codes in
                for i in 0..<codes.count {
                    target[i] = OnnxruntimeArithmetic.dequantize(codes[i], scale: scale, zeroPoint: zero)
                }
            }
            count = m.codes.count
        }
        return result
    }

    /// `m` as codes of `q`: as it is when it holds them already, else its float values quantised (requantised
    /// through them when it holds codes of other parameters, as QLinearConcat does).
    static func codes(_ m: Map, _ q: Quantization) -> Map {
        if m.quantization == q { return m }
        if let from = m.quantization, from.storage != .int32, m.codes.count > 256 {
            return requantizedByTable(m, from, q)
        }
        let source = floats(m)
        var result = Map(channels: m.channels, height: m.height, width: m.width, quantization: q)
        let (scale, zero, range) = (q.scales[0], q.zeroPoints[0], q.storage.range)
        result.codes = [Int32](unsafeUninitializedCapacity: source.floats.count) { target, count in
            source.floats.withUnsafeBufferPointer { values in
                for i in 0..<values.count {
                    target[i] = OnnxruntimeArithmetic.quantize(values[i], scale: scale, zeroPoint: zero, range: range)
                }
            }
            count = source.floats.count
        }
        return result
    }

    /// `m`'s 8-bit codes of `from` as codes of `q` through `requantization`'s table, so the same codes as `codes`
    /// computes one by one.
    private static func requantizedByTable(_ m: Map, _ from: Quantization, _ q: Quantization) -> Map {
        let low = from.storage.range.lowerBound
        let table = requantization(from, to: q)
        var result = Map(channels: m.channels, height: m.height, width: m.width, quantization: q)
        result.codes = [Int32](unsafeUninitializedCapacity: m.codes.count) { target, count in
            m.codes.withUnsafeBufferPointer { codes in
                table.withUnsafeBufferPointer { table in
                    // Codes of `from` are within its range (the reader checks every code; the ops keep them there).
                    for i in 0..<codes.count { target[i] = table[Int(codes[i] &- low) & 0xff] }
                }
            }
            count = m.codes.count
        }
        return result
    }

    /// What each of the 256 codes of `from` (8-bit), lowest first, becomes as a code of `q`: its own dequantisation
    /// and quantisation.
    private static func requantization(_ from: Quantization, to q: Quantization) -> [Int32] {
        from.storage.range.map { code in
            OnnxruntimeArithmetic.quantize(
                OnnxruntimeArithmetic.dequantize(code, scale: from.scales[0], zeroPoint: from.zeroPoints[0]),
                scale: q.scales[0], zeroPoint: q.zeroPoints[0], range: q.storage.range)
        }
    }

    /// `m` quantised to `q` when there is one, as it is otherwise.
    private static func quantized(_ m: Map, _ q: Quantization?) -> Map { q.map { codes(m, $0) } ?? m }

    /// The parts joined as codes of `q`, or when there is none, as the codes they share (a TensorFlow Lite BatchNorm
    /// reads a max pool's codes) or else as floats.
    private func concatenate(_ parts: [Map], _ q: Quantization?) -> Map {
        var result = Map(channels: parts.reduce(0) { $0 + $1.channels }, height: parts[0].height, width: parts[0].width)
        let shared = parts.allSatisfy { $0.quantization == parts[0].quantization } ? parts[0].quantization : nil
        if let q = q ?? shared {
            result.quantization = q
            for part in parts { result.codes += Self.codes(part, q).codes }
        } else {
            for part in parts { result.floats += Self.floats(part).floats }
        }
        return result
    }

    // MARK: ops

    /// A ReLU in place (on a copy, the codes' copy was 1% of a run).
    private static func applyReLU(_ m: inout Map) {
        if let q = m.quantization {
            let zero = q.zeroPoints[0]
            m.codes.withUnsafeMutableBufferPointer { codes in
                for i in codes.indices { codes[i] = max(codes[i], zero) }
            }
        } else {
            for i in m.floats.indices where !(m.floats[i] > 0) { m.floats[i] = 0 }
        }
    }

    /// BatchNorm and the ReLU after it, in float on the input requantised to the norm's input quantisation,
    /// quantised to its output quantisation.
    private func normalise(_ m: Map, _ norm: BatchNorm, relu: Bool = true) -> Map {
        if arithmetic == .tflite, let integer = integerNormalise(Self.quantized(m, norm.inputQuantization), norm, relu)
        {
            return integer
        }
        let input = Self.quantized(m, norm.inputQuantization)
        let (scale, shift) = OnnxruntimeArithmetic.batchNormAffine(norm)
        if let xq = input.quantization, let yq = norm.outputQuantization, xq.storage != .int32, yq.storage != .int32,
            !input.codes.isEmpty
        {
            return Self.normalisedCodes(CodesNormalisation([input], xq, scale, shift, relu: relu, yq))
        }
        var result = Self.floats(input)
        let plane = result.plane
        for c in 0..<result.channels {
            for i in (c * plane)..<((c + 1) * plane) {
                let y = result.floats[i] * scale[c] + shift[c]
                result.floats[i] = relu && !(y > 0) ? 0 : y
            }
        }
        return Self.quantized(result, norm.outputQuantization)
    }

    /// The BatchNorm and ReLU of the concatenation of `parts`: with onnxruntime's arithmetic on 8-bit codes,
    /// `normalisedCodes` (each part normalised straight into its channels, without the concatenation's copy);
    /// otherwise `normalise` of `concatenate`.
    private func normaliseConcatenation(_ parts: [Map], _ norm: BatchNorm) -> Map {
        guard let normalisation = codesNormalisation(parts, norm) else {
            return normalise(concatenate(parts, norm.inputQuantization), norm)
        }
        return Self.normalisedCodes(normalisation)
    }

    /// The BatchNorm and ReLU of the concatenation of `parts` on their codes, when onnxruntime's arithmetic runs it
    /// on 8-bit codes of every part; nil otherwise.
    private func codesNormalisation(_ parts: [Map], _ norm: BatchNorm) -> CodesNormalisation? {
        guard arithmetic != .tflite, let xq = norm.inputQuantization, let yq = norm.outputQuantization,
            xq.storage != .int32, yq.storage != .int32,
            parts.allSatisfy({ $0.quantization != nil && !$0.codes.isEmpty })
        else { return nil }
        let (scale, shift) = OnnxruntimeArithmetic.batchNormAffine(norm)
        return CodesNormalisation(parts, xq, scale, shift, relu: true, yq)
    }

    /// `normalisation`'s codes as a map, each part normalised straight into its channels of the output.
    private static func normalisedCodes(_ normalisation: CodesNormalisation) -> Map {
        var out = Map(
            channels: normalisation.channels, height: normalisation.height, width: normalisation.width,
            quantization: normalisation.yq)
        let plane = out.plane
        out.codes = [Int32](unsafeUninitializedCapacity: out.channels * plane) { target, count in
            for part in normalisation.parts {
                normalisation.write(part.channels, into: target.baseAddress! + part.channels.lowerBound * plane)
            }
            count = out.channels * plane
        }
        return out
    }

    /// A float BatchNorm (and ReLU) of the concatenation of `parts` (8-bit codes, each requantised to `xq` as
    /// `concatenate` does: a part already of `xq` as it is) into codes of `yq`, value for value as `normalise`
    /// computes it through floats, written a part's channels at a time wherever the caller wants them.
    private struct CodesNormalisation {
        /// Each part's codes, its channels in the concatenation, and the table that makes its codes codes of `xq`
        /// (with its lowest code) when they are of other 8-bit parameters.
        let parts: [(codes: [Int32], channels: Range<Int>, table: [Int32], low: Int32?)]
        /// The part each channel is in.
        let owners: [Int]
        let xq: Quantization, yq: Quantization
        let scale: [Float], shift: [Float]
        let relu: Bool
        let height: Int, width: Int
        var plane: Int { height * width }
        var channels: Int { owners.count }

        init(_ parts: [Map], _ xq: Quantization, _ scale: [Float], _ shift: [Float], relu: Bool, _ yq: Quantization) {
            var first = 0
            let sources = parts.map { part -> (codes: [Int32], channels: Range<Int>, table: [Int32], low: Int32?) in
                defer { first += part.channels }
                let range = first..<(first + part.channels)
                // A part of other 8-bit parameters is requantised on the way, through its codes' table.
                guard let from = part.quantization, from != xq, from.storage != .int32 else {
                    return (codes(part, xq).codes, range, [], nil)
                }
                return (part.codes, range, requantization(from, to: xq), from.storage.range.lowerBound)
            }
            self.parts = sources
            owners = sources.indices.flatMap { index in sources[index].channels.map { _ in index } }
            (self.xq, self.yq, self.scale, self.shift, self.relu) = (xq, yq, scale, shift, relu)
            (height, width) = (parts[0].height, parts[0].width)
        }

        /// The normalised planes of `channels` (all in one part), one after another at `target`.
        func write(_ channels: Range<Int>, into target: UnsafeMutablePointer<Int32>) {
            guard let first = channels.first else { return }
            let part = parts[owners[first]]
            part.codes.withUnsafeBufferPointer { codes in
                part.table.withUnsafeBufferPointer { table in
                    normaliseCodes(
                        codes.baseAddress! + (first - part.channels.lowerBound) * plane,
                        through: part.low.map { (table.baseAddress!, $0) }, into: target, plane: plane,
                        channels: channels, xq, scale, shift, relu: relu, yq)
                }
            }
        }
    }

    /// The planes of `channels` (of the norm's `scale` and `shift`), codes of `xq` at `source` (or codes that
    /// `through`'s table, from its lowest code, makes codes of `xq`), normalised into codes of `yq` at `target`:
    /// each code dequantised, times the channel's scale plus its shift, ReLU'd when `relu`, quantised (`normalise`'s
    /// float operations in the same order), 8 values at a time. A table's codes are written to the channel's plane
    /// of `target` first, and normalised there while it is in cache (a pass of their own over the whole part, into
    /// a copy, was 7% of a run).
    private static func normaliseCodes(
        _ source: UnsafePointer<Int32>, through: (table: UnsafePointer<Int32>, low: Int32)?,
        into target: UnsafeMutablePointer<Int32>, plane: Int, channels: Range<Int>, _ xq: Quantization,
        _ scale: [Float], _ shift: [Float], relu: Bool, _ yq: Quantization
    ) {
        let (inScale, inZero) = (xq.scales[0], xq.zeroPoints[0])
        let (outScale, outZero, outRange) = (yq.scales[0], yq.zeroPoints[0], yq.storage.range)
        let (input, to) = (
            UnsafeRawPointer(through == nil ? source : UnsafePointer(target)), UnsafeMutableRawPointer(target)
        )
        let saturation = OnnxruntimeArithmetic.Saturation(zeroPoint: outZero, range: outRange)
        for (index, c) in channels.enumerated() {
            let (factor, offset) = (scale[c], shift[c])
            var i = index * plane
            let end = i + plane
            if let through {
                // Codes are within their type's range (the reader checks every code; the ops keep them there).
                for i in i..<end { target[i] = through.table[Int(source[i] &- through.low) & 0xff] }
            }
            while i + 8 <= end {
                let x = SIMD8<Float>(input.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Int32>.self) &- inZero)
                var y = x * inScale * factor + offset
                if relu { y.replace(with: 0, where: .!(y .> 0)) }
                to.storeBytes(of: saturation(y / outScale), toByteOffset: i * 4, as: SIMD8<Int32>.self)
                i += 8
            }
            let codes = input.assumingMemoryBound(to: Int32.self)
            for i in i..<end {
                let y = OnnxruntimeArithmetic.dequantize(codes[i], scale: inScale, zeroPoint: inZero) * factor + offset
                target[i] = OnnxruntimeArithmetic.quantize(
                    relu && !(y > 0) ? 0 : y, scale: outScale, zeroPoint: outZero, range: outRange)
            }
        }
    }

    /// TensorFlow Lite's int8 BatchNorm (`TFLiteArithmetic.BatchNormKernel`), when the norm and its input are all
    /// codes; nil otherwise.
    private func integerNormalise(_ input: Map, _ norm: BatchNorm, _ relu: Bool) -> Map? {
        guard let xq = input.quantization, let pq = norm.productQuantization, let yq = norm.outputQuantization,
            let gamma = norm.gamma.quantized, let beta = norm.beta.quantized, gamma.quantization.isPerTensor,
            beta.quantization.isPerTensor, gamma.codes.count == input.channels, beta.codes.count == input.channels
        else { return nil }
        let kernel = TFLiteArithmetic.BatchNormKernel(
            input: xq, gamma: gamma.quantization, product: pq, beta: beta.quantization, output: yq, relu: relu)
        var out = Map(channels: input.channels, height: input.height, width: input.width, quantization: yq)
        out.codes = input.codes
        let plane = input.plane
        for c in 0..<input.channels {
            let (g, b) = (gamma.codes[c], beta.codes[c])
            for i in (c * plane)..<((c + 1) * plane) { out.codes[i] = kernel(input.codes[i], gamma: g, beta: b) }
        }
        return out
    }

    private func convolve(_ m: Map, _ conv: Conv2D) -> Map {
        let input = Self.quantized(m, conv.inputQuantization)
        if arithmetic == .tflite, input.quantization == nil, conv.outputQuantization == nil,
            let weights = conv.weight.quantized, Self.isEightBit(weights)
        {
            return hybridConvolution(input, conv, weights)
        }
        guard let xq = input.quantization, let weights = conv.weight.quantized, let yq = conv.outputQuantization,
            Self.isEightBit(weights), conv.bias.map({ $0.quantized != nil }) ?? true
        else {
            return Self.quantized(Self.floatConvolution(Self.floats(input), conv), conv.outputQuantization)
        }
        let (oh, ow) = conv.outputSize(input.height, input.width)
        return integerConvolution(
            conv, weights, Self.columns(input.codes, less: xq.zeroPoints[0], conv, input), input: xq, output: yq,
            height: oh, width: ow)
    }

    /// `conv` of the BatchNorm and ReLU of the concatenation of `parts` (a dense layer's bottleneck): with
    /// onnxruntime's arithmetic, 8-bit codes and a pointwise integer conv of the norm's codes, each channel normalised
    /// (`CodesNormalisation`) straight into the conv's columns; otherwise `convolve` of `normaliseConcatenation`.
    private func normalisedConvolution(_ parts: [Map], _ norm: BatchNorm, _ conv: Conv2D) -> Map {
        guard ExecutionPlan.Conv.isPointwise(conv),
            conv.inputQuantization ?? norm.outputQuantization == norm.outputQuantization,
            let weights = conv.weight.quantized, let outputQuantization = conv.outputQuantization,
            Self.isEightBit(weights), conv.bias.map({ $0.quantized != nil }) ?? true,
            let normalisation = codesNormalisation(parts, norm)
        else {
            return convolve(normaliseConcatenation(parts, norm), conv)
        }
        let (height, width, yq) = (normalisation.height, normalisation.width, normalisation.yq)
        let columns = IntegerGEMM.Columns(
            pointwise: normalisation.channels, height: height, width: width, zeroPoint: yq.zeroPoints[0]
        ) { channel, plane in normalisation.write(channel..<(channel + 1), into: plane) }
        return integerConvolution(
            conv, weights, columns, input: yq, output: outputQuantization, height: height, width: width)
    }

    /// `conv` on `columns` of codes of `input`: the integer product, requantised to `output`.
    private func integerConvolution(
        _ conv: Conv2D, _ weights: QuantizedCodes, _ columns: IntegerGEMM.Columns, input: Quantization,
        output: Quantization, height: Int, width: Int
    ) -> Map {
        var out = Map(channels: conv.outChannels, height: height, width: width, quantization: output)
        out.codes = integerProduct(conv.weight.name, weights, rows: conv.outChannels, columns)
        requantise(
            &out.codes, n: height * width, bias: conv.bias?.quantized?.codes, input: input,
            weight: weights.quantization, output: output)
        return out
    }

    /// TensorFlow Lite's hybrid conv (dynamic range): the float input quantised on the fly
    /// (`TFLiteArithmetic.quantizeOnTheFly`), int32 products with the int8 weights, scaled back to float by input
    /// scale x weight scale, plus the float bias.
    private func hybridConvolution(_ input: Map, _ conv: Conv2D, _ weights: QuantizedCodes) -> Map {
        let (oh, ow) = conv.outputSize(input.height, input.width)
        var out = Map(channels: conv.outChannels, height: oh, width: ow)
        out.floats = hybridProduct(
            conv.weight.name, input.floats, weights, rows: conv.outChannels, bias: conv.bias?.values
        ) { codes, zero in Self.columns(codes, less: zero, conv, input) }
        return out
    }

    /// A hybrid kernel's product: `floats` quantised on the fly, arranged by `columns` less their zero point (so
    /// that padding is 0), times the weights' codes in int32, each row scaled back by input scale x its weight
    /// scale, plus `bias`.
    private func hybridProduct(
        _ name: String, _ floats: [Float], _ weights: QuantizedCodes, rows: Int, bias: [Float]?,
        columns: ([Int32], Int32) -> IntegerGEMM.Columns
    ) -> [Float] {
        let (codes, scale, zero) = TFLiteArithmetic.quantizeOnTheFly(floats)
        let b = columns(codes, zero)
        let n = b.n
        let accumulators = integerProduct(name, weights, rows: rows, b)
        var out = [Float](repeating: 0, count: accumulators.count)
        for row in 0..<rows {
            let factor = scale * weights.quantization.scale(row)
            for j in (row * n)..<((row + 1) * n) { out[j] = Float(accumulators[j]) * factor + (bias?[row] ?? 0) }
        }
        return out
    }

    /// A float conv (a layer the model does not quantise) through im2col and the column GEMM, plus its bias.
    private static func floatConvolution(_ input: Map, _ conv: Conv2D) -> Map {
        let (columns, oh, ow) = ColumnGEMM.im2col(
            input.floats, channels: input.channels, height: input.height, width: input.width, kernel: conv.kernel,
            stride: conv.stride, pads: conv.pads)
        let (k, n) = (input.channels * conv.kernel * conv.kernel, oh * ow)
        var out = Map(channels: conv.outChannels, height: oh, width: ow)
        out.floats = [Float](repeating: 0, count: conv.outChannels * n)
        conv.weight.withFloats { a in
            columns.withUnsafeBufferPointer { b in
                out.floats.withUnsafeMutableBufferPointer {
                    ColumnGEMM.multiply(a, b, into: $0, m: conv.outChannels, n: n, k: k)
                }
            }
        }
        if let bias = conv.bias?.values {
            for o in 0..<conv.outChannels { for j in (o * n)..<((o + 1) * n) { out.floats[j] += bias[o] } }
        }
        return out
    }

    /// Weight codes less their zero points (per row when per channel) times `b`: M x N int32, exact.
    private func integerProduct(_ name: String, _ weights: QuantizedCodes, rows: Int, _ b: IntegerGEMM.Columns)
        -> [Int32]
    {
        let a =
            prepared[name].flatMap { $0.rows == rows && $0.k == b.k && $0.arrangement == b.arrangement ? $0 : nil }
            ?? Self.prepare(weights, rows: rows, k: b.k, arrangement: b.arrangement)
        return IntegerGEMM.multiply(a, b)
    }

    /// The B of `conv` on `map`'s size: `codes` (the map's, or codes standing for its floats) less `zero`.
    private static func columns(_ codes: [Int32], less zero: Int32, _ conv: Conv2D, _ map: Map) -> IntegerGEMM.Columns {
        codes.withUnsafeBufferPointer {
            IntegerGEMM.Columns(
                convolving: $0, zeroPoint: zero, channels: map.channels, height: map.height, width: map.width,
                kernel: conv.kernel, stride: conv.stride, pads: conv.pads)
        }
    }

    /// The B of a linear layer: `codes` less `zero`, one column.
    private static func column(_ codes: [Int32], less zero: Int32) -> IntegerGEMM.Columns {
        codes.withUnsafeBufferPointer {
            IntegerGEMM.Columns(
                convolving: $0, zeroPoint: zero, channels: codes.count, height: 1, width: 1, kernel: 1, stride: 1,
                pads: [0, 0, 0, 0])
        }
    }

    /// Accumulators (rows of `n`) plus the int32 bias, requantised to `output` per row, in place.
    private func requantise(
        _ codes: inout [Int32], n: Int, bias: [Int32]?, input: Quantization, weight: Quantization,
        output: Quantization
    ) {
        let (zero, range) = (output.zeroPoints[0], output.storage.range)
        let rows = n == 0 ? 0 : codes.count / n
        let tflite = arithmetic == .tflite
        let saturation = OnnxruntimeArithmetic.Saturation(zeroPoint: zero, range: range)
        let multipliers =
            tflite ? TFLiteArithmetic.multipliers(input: input, weight: weight, output: output, channels: rows) : []
        codes.withUnsafeMutableBufferPointer { codes in
            for row in 0..<rows {
                let offset = bias?[row] ?? 0
                let values = UnsafeMutableBufferPointer(rebasing: codes[(row * n)..<((row + 1) * n)])
                if tflite {
                    let m = multipliers[row]
                    for j in 0..<values.count {
                        values[j] = TFLiteArithmetic.clamp(
                            TFLiteArithmetic.multiplyInGEMM(values[j] &+ offset, by: m) &+ zero, range)
                    }
                } else {
                    let multiplier = OnnxruntimeArithmetic.multiplier(
                        input: input, weight: weight, output: output, channel: row)
                    let base = UnsafeMutableRawPointer(values.baseAddress!)
                    // 8 at a time for 8-bit outputs (`saturate`'s vector form holds codes of at most 2^9 in magnitude).
                    var j = 0
                    while j + 8 <= values.count, output.storage != .int32 {
                        let sum = base.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Int32>.self) &+ offset
                        base.storeBytes(
                            of: saturation(SIMD8<Float>(sum) * multiplier), toByteOffset: j * 4, as: SIMD8<Int32>.self)
                        j += 8
                    }
                    for j in j..<values.count {
                        values[j] = OnnxruntimeArithmetic.saturate(
                            Float(values[j] &+ offset) * multiplier, zeroPoint: zero, range: range)
                    }
                }
            }
        }
    }

    private func pool(_ m: Map, _ pool: Pool2D) -> Map {
        if pool.kind == .max, let q = m.quantization {
            // A max of codes is the code of the max: onnxruntime pools uint8 and int8 directly.
            var out = Self.pooledCodes(m, pool, from: .min, max) { largest, count in
                count == 0 ? q.zeroPoints[0] : largest
            }
            out.quantization = q
            return Self.quantized(out, pool.outputQuantization)
        }
        if pool.kind == .average, arithmetic == .tflite, let q = m.quantization {
            // TensorFlow Lite averages the codes themselves, its input and output sharing one scale.
            var out = Self.pooledCodes(m, pool, from: 0, &+) { sum, count in
                TFLiteArithmetic.average(
                    sum, count: Int32(pool.countIncludePad ? pool.kernel * pool.kernel : count),
                    range: q.storage.range)
            }
            out.quantization = q
            return Self.quantized(out, pool.outputQuantization)
        }
        if pool.kind == .average, let xq = m.quantization, let yq = pool.outputQuantization {
            return averagePool(m, pool, xq, yq)
        }
        let source = Self.floats(m)
        let result = Reference.pool(
            source.floats, channels: m.channels, height: m.height, width: m.width, max: pool.kind == .max,
            kernel: pool.kernel, stride: pool.stride, pads: pool.pads, countIncludePad: pool.countIncludePad)
        let out = Map(channels: m.channels, height: result.height, width: result.width, floats: result.values)
        return Self.quantized(out, pool.outputQuantization)
    }

    /// QLinearAveragePool: each window's codes less the zero point summed in int32, scaled by input scale / (output
    /// scale x the window's count), the output zero point added before rounding (a mean halfway between two codes
    /// rounds to the even code, not to the even offset from the zero point).
    private func averagePool(_ m: Map, _ pool: Pool2D, _ xq: Quantization, _ yq: Quantization) -> Map {
        let zero = xq.zeroPoints[0]
        let area = pool.kernel * pool.kernel
        let whole = xq.scales[0] / (yq.scales[0] * Float(max(area, 1)))
        var out = Self.pooledCodes(m, pool, from: 0, &+, of: { $0 &- zero }) { sum, inside in
            let count = pool.countIncludePad ? area : inside
            let multiplier = count == area ? whole : xq.scales[0] / (yq.scales[0] * Float(max(count, 1)))
            return OnnxruntimeArithmetic.roundingWithZeroPoint(
                Float(sum) * multiplier, zeroPoint: yq.zeroPoints[0], range: yq.storage.range)
        }
        out.quantization = yq
        return out
    }

    /// `m`'s codes pooled by `pool`: the `value`s of each window's codes inside the map (padding holds none) folded
    /// by `combine` (associative and commutative: a max, or a sum that wraps) from `initial`, then `finish` makes the
    /// output code of that and the number of codes folded. Each output row folds its window's rows first, a column
    /// at a time (a row of partial folds, vectorised), then each window's columns of those. Inlined into each caller
    /// with its closures (a call per window, on a copy of its codes, was 7% of a run).
    @inline(__always)
    private static func pooledCodes(
        _ m: Map, _ pool: Pool2D, from initial: Int32, _ combine: (Int32, Int32) -> Int32,
        of value: (Int32) -> Int32 = { $0 }, finish: (Int32, Int) -> Int32
    ) -> Map {
        let (oh, ow) = pool.outputSize(m.height, m.width)
        var out = Map(channels: m.channels, height: oh, width: ow)
        let (kernel, stride, top, left, width) = (pool.kernel, pool.stride, pool.pads[0], pool.pads[1], m.width)
        /// The window from `start` along an axis of `size`, cut to the map (empty when it lies in the padding).
        func inside(_ start: Int, _ size: Int) -> Range<Int> {
            let (first, end) = (max(0, start), min(size, start + kernel))
            return first..<max(first, end)
        }
        let folds = UnsafeMutablePointer<Int32>.allocate(capacity: max(width, 1))
        defer { folds.deallocate() }
        out.codes = [Int32](unsafeUninitializedCapacity: m.channels * oh * ow) { target, count in
            m.codes.withUnsafeBufferPointer { codes in
                for c in 0..<m.channels {
                    let plane = codes.baseAddress! + c * m.height * width
                    for oy in 0..<oh {
                        let rows = inside(oy * stride - top, m.height)
                        folds.update(repeating: initial, count: width)
                        for iy in rows {
                            let line = plane + iy * width
                            for x in 0..<width { folds[x] = combine(folds[x], value(line[x])) }
                        }
                        for ox in 0..<ow {
                            let columns = inside(ox * stride - left, width)
                            var folded = initial
                            for x in columns { folded = combine(folded, folds[x]) }
                            target[(c * oh + oy) * ow + ox] = finish(folded, rows.count * columns.count)
                        }
                    }
                }
            }
            count = m.channels * oh * ow
        }
        return out
    }

    /// The head's global pool to one value per channel: QLinearGlobalAveragePool's integer sum when the input
    /// holds codes and the output is quantised, a float mean (or max) otherwise.
    private func globalPool(_ m: Map, _ kind: Head.Pool, to q: Quantization?) -> Map {
        let plane = m.plane
        if kind == .average, arithmetic == .tflite, let xq = m.quantization, let q {
            var out = Map(channels: m.channels, height: 1, width: 1, quantization: q)
            out.codes = (0..<m.channels).map { c in
                let sum = m.codes[(c * plane)..<((c + 1) * plane)].reduce(0, &+)
                return TFLiteArithmetic.mean(sum: sum, count: plane, input: xq, output: q)
            }
            return out
        }
        if kind == .average, let xq = m.quantization, let q {
            var out = Map(channels: m.channels, height: 1, width: 1, quantization: q)
            let multiplier = xq.scales[0] / (q.scales[0] * Float(plane))
            let bias = -xq.zeroPoints[0] &* Int32(plane)
            out.codes = (0..<m.channels).map { c in
                var sum = bias
                for i in (c * plane)..<((c + 1) * plane) { sum &+= m.codes[i] }
                return OnnxruntimeArithmetic.saturate(
                    Float(sum) * multiplier, zeroPoint: q.zeroPoints[0], range: q.storage.range)
            }
            return out
        }
        let source = Self.floats(m)
        let values =
            kind == .average
            ? Reference.globalAveragePool(source.floats, channels: m.channels)
            : Reference.globalMaxPool(source.floats, channels: m.channels)
        return Self.quantized(Map(channels: m.channels, height: 1, width: 1, floats: values), q)
    }

    private func linear(_ m: Map, _ linear: Linear) -> Map {
        if let product = linear.productQuantization {
            // The product requantised to its own parameters, then the bias added to its real values and the sum
            // quantised (onnxruntime's QLinearAdd, in float).
            var matMul = linear
            (matMul.bias, matMul.outputQuantization, matMul.productQuantization) = (nil, product, nil)
            var sum = Self.floats(self.linear(m, matMul))
            if let bias = linear.bias?.values {
                for i in sum.floats.indices { sum.floats[i] += bias[i] }
            }
            return Self.quantized(sum, linear.outputQuantization)
        }
        let input = Self.quantized(m, linear.inputQuantization)
        if arithmetic == .tflite, input.quantization == nil, linear.outputQuantization == nil,
            let weights = linear.weight.quantized, Self.isEightBit(weights)
        {
            let values = hybridProduct(
                linear.weight.name, input.floats, weights, rows: linear.outFeatures, bias: linear.bias?.values,
                columns: Self.column)
            return Map(channels: values.count, height: 1, width: 1, floats: values)
        }
        guard let xq = input.quantization, let weights = linear.weight.quantized, Self.isEightBit(weights),
            linear.bias.map({ $0.quantized != nil }) ?? true
        else {
            let source = Self.floats(input)
            let values = Reference.linear(
                source.floats, weight: linear.weight.values, bias: linear.bias?.values, outFeatures: linear.outFeatures)
            return Self.quantized(
                Map(channels: values.count, height: 1, width: 1, floats: values), linear.outputQuantization)
        }
        let accumulators = integerProduct(
            linear.weight.name, weights, rows: linear.outFeatures, Self.column(input.codes, less: xq.zeroPoints[0]))
        guard let yq = linear.outputQuantization else {
            // QGemm without an output scale: the accumulator (bias included) times input scale x weight scale.
            let bias = linear.bias?.quantized?.codes
            let values = accumulators.indices.map { j in
                Float(accumulators[j] &+ (bias?[j] ?? 0)) * (xq.scales[0] * weights.quantization.scale(j))
            }
            return Map(channels: values.count, height: 1, width: 1, floats: values)
        }
        var out = Map(channels: linear.outFeatures, height: 1, width: 1, codes: accumulators, quantization: yq)
        requantise(
            &out.codes, n: 1, bias: linear.bias?.quantized?.codes, input: xq, weight: weights.quantization, output: yq)
        return out
    }
}
