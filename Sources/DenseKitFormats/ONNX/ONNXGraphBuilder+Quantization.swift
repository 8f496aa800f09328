import DenseKitGraph
import Foundation

/// An int8 model in onnxruntime's QDQ format, as its quantiser writes one: each quantised weight an INT8 (UINT8,
/// INT32) initializer behind a DequantizeLinear, each quantised activation a QuantizeLinear and a DequantizeLinear,
/// and no ReLU where the QuantizeLinear after it clamps at 0 by itself (its zero point the type's lowest code).
extension ONNXGraphBuilder {
    static func dataType(_ storage: Quantization.Storage) -> Int32 {
        switch storage {
        case .uint8: return 2
        case .int8: return 3
        case .int32: return 6
        }
    }

    /// `value` rounded to the codes of `q` (a QuantizeLinear and a DequantizeLinear named from `name`); as it is
    /// without `q`, or when it holds those codes already. `last`: the DequantizeLinear gives the graph's output.
    mutating func quantized(_ value: String, _ q: Quantization?, _ name: String, last: Bool = false) -> String {
        guard let q, quantizedValues[value] != q || last else { return value }
        let (scale, zeroPoint) = parameters(name, q)
        let codes = node("QuantizeLinear", name + ".quantize", [value, scale, zeroPoint])
        let output = node("DequantizeLinear", name, [codes, scale, zeroPoint], last: last)
        quantizedValues[output] = q
        return output
    }

    /// A ReLU named `name` (when `relu`) and the quantisation `q` of its output: without the ReLU when `q` clamps
    /// at 0 itself. `last`: what it gives is the graph's output.
    mutating func relu(
        _ name: String, _ value: String, relu: Bool = true, then q: Quantization?, last: Bool = false
    ) -> String {
        if q?.clampsAtZero == true { return quantized(value, q, name + ".output", last: last) }
        let activated = relu ? node("Relu", name, [value], last: last && q == nil) : value
        return quantized(activated, q, name + ".output", last: last)
    }

    /// A quantised weight: its codes, scale(s) and zero point(s) as initializers and the DequantizeLinear of them,
    /// which gives `name`.
    mutating func dequantized(_ name: String, _ weight: QuantizedCodes, shape: [Int]) -> String {
        let q = weight.quantization
        initializers.append(
            ONNXTensorRef(
                name: name + ".quantized", dims: shape.map(Int64.init), dataType: Self.dataType(q.storage),
                payload: .raw(Self.bytes(weight.codes, q.storage))))
        let (scale, zeroPoint) = parameters(name, q)
        let attributes: [String: ONNXAttribute] = q.axis.map { ["axis": .int(Int64($0))] } ?? [:]
        return node("DequantizeLinear", name, [name + ".quantized", scale, zeroPoint], attributes)
    }

    /// The scale (FLOAT) and zero point (of the codes' type) initializers of `q`: scalars per tensor, vectors per
    /// channel.
    private mutating func parameters(_ name: String, _ q: Quantization) -> (scale: String, zeroPoint: String) {
        let dims: [Int64] = q.isPerTensor ? [] : [Int64(q.scales.count)]
        let scale = initializer(
            name + ".scale", Tensor(name: name + ".scale", shape: dims.map(Int.init), values: q.scales))
        initializers.append(
            ONNXTensorRef(
                name: name + ".zero_point", dims: dims, dataType: Self.dataType(q.storage),
                payload: .raw(Self.bytes(q.zeroPoints, q.storage))))
        return (scale, name + ".zero_point")
    }

    /// Codes as the raw bytes of their type: one byte each for UINT8 and INT8, four little-endian for INT32.
    private static func bytes(_ codes: [Int32], _ storage: Quantization.Storage) -> Data {
        var bytes = Data(capacity: codes.count * (storage == .int32 ? 4 : 1))
        for code in codes {
            switch storage {
            case .uint8: bytes.append(UInt8(truncatingIfNeeded: code))
            case .int8: bytes.append(UInt8(bitPattern: Int8(truncatingIfNeeded: code)))
            case .int32: withUnsafeBytes(of: code.littleEndian) { bytes.append(contentsOf: $0) }
            }
        }
        return bytes
    }
}
