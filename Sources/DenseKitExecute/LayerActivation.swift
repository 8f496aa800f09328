/// The output of one canonical layer for one image, CHW: for `block<b>.layer<i>` the k channels the
/// layer adds, for `stem` and `transition<t>` the block input they produce, for `head` the class scores
/// (channels = classes, height = width = 1). Valid only until the execution advances; empty, except
/// for the head, when the execution does not report activations (`ImageExecution.reportsActivations`).
public struct LayerActivation {
    public let name: String
    public let channels: Int
    public let height: Int
    public let width: Int
    public let values: UnsafeBufferPointer<Float>
    /// For a layer a quantised model gives as codes: the share of them at its type's limits (the lowest code not
    /// counted where it stands for 0, as after a ReLU); nil for a float activation.
    public var saturation: Float? = nil
}
