import Foundation

/// What `densekit inspect` shows: the recognised structure and what the file stores.
extension DenseNet {
    /// Distinct stored dtypes of the weights, e.g. ["f16", "f32"]; a quantised weight's codes by their type ("int8").
    public var storedDTypes: [String] {
        Array(Set(tensors.map { $0.quantized?.quantization.storage.rawValue ?? $0.storedDType.rawValue })).sorted()
    }
}

extension Stem {
    /// "conv 7x7/2 3->64, BN, ReLU, max pool 3x3/2"; a deep stem lists each conv, an anti-aliased one its blur.
    public var summary: String {
        var parts: [String] = []
        for (index, convolution) in convolutions.enumerated() {
            let conv = convolution.conv
            parts.append("conv \(conv.kernel)x\(conv.kernel)/\(conv.stride) \(conv.inChannels)->\(conv.outChannels)")
            if convolution.norm != nil {
                parts.append("BN")
            } else if convolution.normFolded {
                parts.append("BN (folded)")
            }
            if index > 0 || relu { parts.append("ReLU") }
        }
        if let pool { parts.append("\(pool.kind) pool \(pool.kernel)x\(pool.kernel)/\(pool.stride)") }
        if let blur {
            parts.append("blur pool \(blur.kernel)x\(blur.kernel)/\(blur.stride) (reflect pad \(blur.padding))")
        }
        return parts.joined(separator: ", ")
    }
}
