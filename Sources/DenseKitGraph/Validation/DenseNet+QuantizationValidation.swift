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
            if let bad = quantized.codes.first(where: { !q.storage.range.contains($0) }) {
                throw ImportError.mismatch(
                    .tensor(tensor.name), expected: "codes of \(q.storage.rawValue)", found: "\(bad)")
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
}
