import Foundation

/// A named weight tensor: its shape, the dtype the source stored it in, and its values as float32.
///
/// Layout is whatever the owning layer says (OIHW for conv weights, (out, in) for linear weights).
/// Values either live in an array or, for float32 tensors of a `.dnk` file, stay in the file's
/// memory map until something asks for them (zero-copy load); assigning `values` makes them owned.
public struct Tensor: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    /// The dtype of the source file; `values` always hold float32.
    public var storedDType: DType
    /// The integer codes of a quantised weight (`values` are then their dequantised values).
    public var quantized: QuantizedCodes? = nil
    private var storage: Storage

    package enum Storage: Sendable {
        case owned([Float])
        /// `count` little-endian float32 values at a 4-byte aligned offset of a mapped file.
        case mapped(MappedFile, offset: Int, count: Int)
    }

    public init(name: String, shape: [Int], storedDType: DType = .f32, values: [Float]) {
        self.name = name
        self.shape = shape
        self.storedDType = storedDType
        storage = .owned(values)
    }

    /// A float32 tensor read in place from `file`: `count` values at `offset`, which the caller has
    /// checked lie inside the file.
    package init(name: String, shape: [Int], mapped file: MappedFile, offset: Int, count: Int) {
        self.name = name
        self.shape = shape
        storedDType = .f32
        storage = .mapped(file, offset: offset, count: count)
    }

    /// The values as float32 (a copy when they are still in a mapped file).
    public var values: [Float] {
        get {
            switch storage {
            case .owned(let stored): return stored
            case .mapped: return withFloats { Array($0) }
            }
        }
        set { storage = .owned(newValue) }
    }

    /// Calls `body` with the values in place, without copying mapped ones.
    public func withFloats<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        switch storage {
        case .owned(let stored):
            return try stored.withUnsafeBufferPointer(body)
        case .mapped(let file, let offset, let count):
            return try file.data.withUnsafeBytes { raw in
                let start = raw.baseAddress.map { ($0 + offset).assumingMemoryBound(to: Float.self) }
                return try body(UnsafeBufferPointer(start: start, count: count))
            }
        }
    }

    /// Number of values the tensor holds. `DenseNet.validate()` checks that it is the product of `shape`.
    public var count: Int {
        switch storage {
        case .owned(let stored): return stored.count
        case .mapped(_, _, let count): return count
        }
    }

    /// The product of `shape`, or nil when a dimension is negative or the product overflows.
    public var shapeProduct: Int? { Self.product(of: shape) }

    /// The product of the dimensions, or nil when one is negative or the product overflows.
    public static func product(of shape: [Int]) -> Int? {
        var product = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (next, overflow) = product.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            product = next
        }
        return product
    }

    /// Bytes the tensor occupied in its source dtype.
    public var storedBytes: Int { count * storedDType.size }

    /// Number of NaN or infinite values.
    public var nonFiniteCount: Int { withFloats { $0.reduce(0) { $0 + ($1.isFinite ? 0 : 1) } } }

    /// The transpose of a 2-D tensor: Keras's and ONNX MatMul's (in, out) becomes (out, in).
    /// The caller has checked that it is 2-D with as many values as its shape says.
    public func transposed() -> Tensor {
        guard shape.count == 2, let elements = shapeProduct, elements == count else { return self }
        let rows = shape[0]
        let cols = shape[1]
        let source = values
        var result = [Float](repeating: 0, count: source.count)
        for r in 0..<rows { for c in 0..<cols { result[c * rows + r] = source[r * cols + c] } }
        var out = Tensor(name: name, shape: [cols, rows], storedDType: storedDType, values: result)
        // Codes move with their values, a per-column quantisation becoming per-row.
        if var quantized, quantized.codes.count == elements {
            let codes = quantized.codes
            for r in 0..<rows { for c in 0..<cols { quantized.codes[c * rows + r] = codes[r * cols + c] } }
            quantized.quantization.axis = quantized.quantization.axis.map { $0 == 0 ? 1 : $0 == 1 ? 0 : $0 }
            out.quantized = quantized
        }
        return out
    }

    public static func == (a: Tensor, b: Tensor) -> Bool {
        a.name == b.name && a.shape == b.shape && a.storedDType == b.storedDType && a.quantized == b.quantized
            && a.values == b.values
    }
}

/// A file mapped into memory, kept alive by the tensors that read from it.
package final class MappedFile: Sendable {
    package let data: Data
    package init(_ data: Data) { self.data = data }
}
