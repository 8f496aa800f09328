/// A named weight tensor: its shape, the dtype the source stored it in, and its values as float32.
///
/// Layout is whatever the owning layer says (OIHW for conv weights, (out, in) for linear weights).
public struct Tensor: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    /// The dtype of the source file; `values` always hold float32.
    public var storedDType: DType
    public var values: [Float]

    public init(name: String, shape: [Int], storedDType: DType = .f32, values: [Float]) {
        self.name = name
        self.shape = shape
        self.storedDType = storedDType
        self.values = values
    }

    /// Number of elements: the product of `shape` (a structure-only tensor may hold no values).
    public var count: Int { shape.reduce(1, *) }

    /// Bytes the tensor occupied in its source dtype.
    public var storedBytes: Int { count * storedDType.size }

    /// Number of NaN or infinite values.
    public var nonFiniteCount: Int { values.reduce(0) { $0 + ($1.isFinite ? 0 : 1) } }
}
