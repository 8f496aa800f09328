/// The quantisation a model carries, checked whatever file it came from: a scale of 0, below 0 or NaN, a zero point
/// its type cannot hold, per-channel parameters of the wrong length, codes its type cannot hold, or an activation
/// quantised per channel is refused, naming the tensor or the canonical layer.
extension DenseNet {
    func validateQuantization() throws {
        for tensor in tensors {
            guard let quantized = tensor.quantized else { continue }
            let q = quantized.quantization
            if let axis = q.axis, !tensor.shape.indices.contains(axis) {
                throw ImportError.mismatch(
                    .tensor(tensor.name), expected: "a quantisation axis of its \(tensor.shape.count) dimensions",
                    found: "axis \(axis)")
            }
            if let (_, expected, found) = q.problem(axisLength: q.axis.map { tensor.shape[$0] }) {
                throw ImportError.mismatch(.tensor(tensor.name), expected: expected, found: found)
            }
            guard quantized.codes.count == tensor.count else {
                throw ImportError.mismatch(
                    .tensor(tensor.name), expected: "\(tensor.count) codes", found: "\(quantized.codes.count)")
            }
            if let bad = q.storage.firstOutside(quantized.codes) {
                throw ImportError.mismatch(
                    .tensor(tensor.name), expected: "codes of \(q.storage.rawValue)", found: "\(bad)")
            }
        }
        if let transform = inputTransform, let steps = transform.quantized {
            try validate(steps)
            // What runs in float (a dequantised conversion, the float executor) must be what the codes stand for.
            if let expected = steps.floatTransform(channels: input.channels),
                expected.scale != transform.scale || expected.offset != transform.offset
            {
                throw ImportError.mismatch(
                    .part("input transform"),
                    expected: "the scale and offset of its steps on codes (\(expected.summary))",
                    found: transform.summary)
            }
        }
        for step in steps {
            let layer = step.layer
            for (part, q) in step.activationQuantizations {
                if let (_, expected, found) = q.problem(axisLength: nil) {
                    throw ImportError.mismatch(.layer(layer, part: part), expected: expected, found: found)
                }
                guard q.isPerTensor, q.storage != .int32 else {
                    throw ImportError.unsupported(
                        .layer(layer, part: part),
                        problem: "an activation quantised \(q.isPerTensor ? "to int32" : "per channel")")
                }
            }
        }
    }

    /// Preprocessing on codes: sensible parameters, per tensor, every step's operands and result of the input's
    /// 8-bit type (as onnxruntime's QLinearMul and QLinearAdd and TensorFlow Lite's MUL, ADD and SUB require), the
    /// constant one code of its type or one per input channel, a subtraction only in TensorFlow Lite's arithmetic,
    /// and the result what the stem conv reads.
    private func validate(_ transform: QuantizedInputTransform) throws {
        let subject = ImportSubject.part("input transform on codes")
        let storage = transform.input.storage
        guard storage != .int32 else {
            throw ImportError.mismatch(subject, expected: "an input quantised to uint8 or int8", found: "int32")
        }
        var sites = [(transform.input, "the input")]
        for step in transform.steps {
            sites += [(step.constantQuantization, "the constant of \(step.origin)"), (step.output, step.origin)]
            let constant = ImportSubject.part("the constant of \(step.origin)")
            guard step.constants.count == 1 || step.constants.count == input.channels else {
                throw ImportError.mismatch(
                    constant, expected: "one code, or one per input channel (\(input.channels))",
                    found: "\(step.constants.count) codes")
            }
            if let bad = step.constantQuantization.storage.firstOutside(step.constants) {
                throw ImportError.mismatch(
                    constant, expected: "a code of \(step.constantQuantization.storage.rawValue)", found: "\(bad)")
            }
            // onnxruntime has no integer Sub.
            if integerArithmetic != .tflite, step.operation == .subtract {
                throw ImportError.unsupported(
                    .part(step.origin), problem: "a subtraction on codes in \(integerArithmetic.framework)'s arithmetic"
                )
            }
        }
        for (q, site) in sites {
            if let (_, expected, found) = q.problem(axisLength: nil) {
                throw ImportError.mismatch(.part(site), expected: expected, found: found)
            }
            guard q.isPerTensor, q.storage == storage else {
                throw ImportError.mismatch(
                    .part(site), expected: "one scale and zero point of \(storage.rawValue) (the input's type)",
                    found: q.isPerTensor ? q.storage.rawValue : "\(q.scales.count) scales")
            }
        }
        guard stem.conv.inputQuantization == transform.output else {
            throw ImportError.mismatch(
                subject, expected: "its result quantised as the stem conv reads its input",
                found: "scale \(transform.output.scales[0]), zero point \(transform.output.zeroPoints[0]) against "
                    + (stem.conv.inputQuantization.map { "scale \($0.scales[0]), zero point \($0.zeroPoints[0])" }
                        ?? "float input"))
        }
    }
}
