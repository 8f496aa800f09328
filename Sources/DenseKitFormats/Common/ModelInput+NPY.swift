import DenseKitExecute
import DenseKitGraph

extension ModelInput {
    /// An `.npy` array in `layout` (default: the model's own input layout), checked against the model.
    public init(_ array: NPY.Array, layout: InputSpec.Layout?, for net: DenseNet) throws {
        try self.init(shape: array.shape, values: array.values, layout: layout, for: net)
    }
}
