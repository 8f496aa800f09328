import Foundation

/// How far one activation is from another (B is the reference side).
///
/// `maxRel` is the largest absolute difference divided by the largest magnitude in B (the layer's
/// scale), which stays meaningful where individual values are near zero. `nmse` is
/// sum (a - b)^2 / sum b^2.
public struct ErrorMetrics: Sendable, Equatable {
    public var maxAbs: Float = 0
    public var maxRel: Float = 0
    public var cosine: Float = 1
    public var nmse: Float = 0
    /// Largest |b|: the scale the tolerance is applied against.
    public var scale: Float = 0

    public init() {}

    public init(_ values: UnsafeBufferPointer<Float>, _ reference: UnsafeBufferPointer<Float>) {
        var maxAbs: Float = 0
        var scale: Float = 0
        var dot = 0.0
        var na = 0.0
        var nb = 0.0
        var err = 0.0
        for i in 0..<min(values.count, reference.count) {
            let value = values[i]
            let expected = reference[i]
            let difference = abs(value - expected)
            if !(difference <= maxAbs) { maxAbs = difference }  // NaN propagates
            if !(abs(expected) <= scale) { scale = abs(expected) }  // NaN propagates
            dot += Double(value) * Double(expected)
            na += Double(value) * Double(value)
            nb += Double(expected) * Double(expected)
            err += Double(value - expected) * Double(value - expected)
        }
        self.maxAbs = maxAbs
        self.scale = scale
        maxRel = scale > 0 ? maxAbs / scale : maxAbs
        cosine =
            dot.isNaN || na.isNaN || nb.isNaN
            ? .nan : na > 0 && nb > 0 ? Float(dot / (na.squareRoot() * nb.squareRoot())) : (na == nb ? 1 : 0)
        nmse = nb > 0 ? Float(err / nb) : Float(err)
    }

    /// Signal to quantisation noise in dB, 10 log10(sum b^2 / sum (a - b)^2): infinite for identical activations.
    public var sqnr: Float { nmse > 0 ? -10 * log10(nmse) : nmse == 0 ? .infinity : .nan }

    /// Worst of two (for combining images of a batch); a NaN in either is the worst.
    public func merged(_ other: ErrorMetrics) -> ErrorMetrics {
        func worst(_ first: Float, _ second: Float, _ pick: (Float, Float) -> Float) -> Float {
            first.isNaN || second.isNaN ? .nan : pick(first, second)
        }
        var combined = ErrorMetrics()
        combined.maxAbs = worst(maxAbs, other.maxAbs, max)
        combined.maxRel = worst(maxRel, other.maxRel, max)
        combined.cosine = worst(cosine, other.cosine, min)
        combined.nmse = worst(nmse, other.nmse, max)
        combined.scale = worst(scale, other.scale, max)
        return combined
    }
}

/// When two activations count as the same: every |a - b| <= atol + rtol * (largest |b| of the layer).
public struct Tolerance: Sendable, Equatable {
    /// Defaults for float32 through a deep net: exports of the same weights differ by float
    /// reassociation (about 1e-6 of a layer's scale); a changed weight moves a layer by far more.
    public static let defaultAbsolute: Float = 1e-5
    public static let defaultRelative: Float = 1e-4

    public var absolute: Float
    public var relative: Float

    public init(absolute: Float = defaultAbsolute, relative: Float = defaultRelative) {
        self.absolute = absolute
        self.relative = relative
    }

    /// False when a metric is NaN: a NaN is never within tolerance.
    public func allows(_ metrics: ErrorMetrics) -> Bool { metrics.maxAbs <= absolute + relative * metrics.scale }
    /// The largest difference allowed for a layer of the given scale.
    public func limit(scale: Float) -> Float { absolute + relative * scale }
}
