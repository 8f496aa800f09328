/// Folding a BatchNorm into the conv it directly follows, in one place: the executor's plan folds
/// every such BN this way before it runs, and `convert --fold-bn` writes the same weights, so a
/// folded file runs bit for bit like its source.
extension Conv2D {
    /// `self` followed by `norm`: W' = s * W per output channel, b' = s * b + t, with (s, t) the
    /// BN's affine form.
    public func folding(_ norm: BatchNorm) -> Conv2D {
        let (scales, shifts) = norm.affine()
        let per = weight.count / max(outChannels, 1)
        // One pass from the stored values (mapped ones are read in place) into the folded copy.
        let foldedWeight = weight.withFloats { source in
            [Float](unsafeUninitializedCapacity: source.count) { folded, initialized in
                for o in 0..<outChannels {
                    let scale = scales[o]
                    for i in (o * per)..<((o + 1) * per) { folded[i] = source[i] * scale }
                }
                for i in (outChannels * per)..<source.count { folded[i] = source[i] }
                initialized = source.count
            }
        }
        let folded = foldedBias(scales: scales, shifts: shifts)
        var out = self
        out.weight.values = foldedWeight
        out.bias = Tensor(
            name: bias?.name ?? weight.name.replacingOccurrences(of: "weight", with: "bias"), shape: [outChannels],
            values: folded)
        return out
    }

    /// The bias of `self` followed by a BN of affine form (`scales`, `shifts`): s * b + t per output
    /// channel, b zero when `self` has none.
    public func foldedBias(scales: [Float], shifts: [Float]) -> [Float] {
        let originalBias = bias?.values
        return (0..<outChannels).map { o in (originalBias?[o] ?? 0) * scales[o] + shifts[o] }
    }
}
