import Foundation

/// What `densekit inspect` shows: the recognised structure and what the file stores.
extension DenseNet {
    /// Distinct stored dtypes of the weights, e.g. ["f16", "f32"].
    public var storedDTypes: [String] {
        Array(Set(tensors.map(\.storedDType.rawValue))).sorted()
    }
}
