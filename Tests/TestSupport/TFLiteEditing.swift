import Foundation
import TFLiteSchema

/// Edits of TFLite fixtures through the TFLiteSchema shim's in-place mutators: one stored field is changed in an
/// otherwise valid file (the FlatBuffers verifier still accepts it), for the lying-file cases.
public enum TFLiteEditing {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The fixture's bytes with `edit` applied to them in place; `edit` returns whether it changed something.
    public static func edited(_ fixture: String, _ edit: (UnsafeMutablePointer<UInt8>) -> Bool) throws -> Data {
        var data = try Fixtures.data(fixture)
        let changed = data.withUnsafeMutableBytes { raw -> Bool in
            let base = raw.bindMemory(to: UInt8.self).baseAddress!
            return dk_tflite_verify(base, raw.count) == 1 && edit(base)
        }
        guard changed else { throw Failure(description: "\(fixture): the edit changed nothing") }
        return data
    }

    /// Operator `index`'s input tensor indices.
    public static func inputs(_ data: UnsafePointer<UInt8>, operator index: UInt32) -> [Int32] {
        var op = DKTFLiteOperator()
        dk_tflite_operator(data, 0, index, &op)
        return Array(UnsafeBufferPointer(start: op.inputs.values, count: Int(op.inputs.count)))
    }

    /// Operator `index`'s output tensor indices.
    public static func outputs(_ data: UnsafePointer<UInt8>, operator index: UInt32) -> [Int32] {
        var op = DKTFLiteOperator()
        dk_tflite_operator(data, 0, index, &op)
        return Array(UnsafeBufferPointer(start: op.outputs.values, count: Int(op.outputs.count)))
    }

    /// Tensor `index`'s name.
    public static func name(_ data: UnsafePointer<UInt8>, tensor index: Int32) -> String {
        var tensor = DKTFLiteTensor()
        dk_tflite_tensor(data, 0, UInt32(index), &tensor)
        guard let start = tensor.name else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: start, count: Int(tensor.nameLength)), as: UTF8.self)
    }

    public static func setBuffer(_ data: UnsafeMutablePointer<UInt8>, tensor: Int32, to buffer: UInt32) -> Bool {
        dk_tflite_edit_tensor_buffer(data, 0, UInt32(tensor), buffer) == 1
    }

    public static func setDim(_ data: UnsafeMutablePointer<UInt8>, tensor: Int32, axis: UInt32, to value: Int32)
        -> Bool
    {
        dk_tflite_edit_tensor_dim(data, 0, UInt32(tensor), axis, value) == 1
    }

    public static func setInput(
        _ data: UnsafeMutablePointer<UInt8>, operator index: UInt32, position: UInt32, to tensor: Int32
    ) -> Bool {
        dk_tflite_edit_operator_input(data, 0, index, position, tensor) == 1
    }

    public static func setConvStride(_ data: UnsafeMutablePointer<UInt8>, operator index: UInt32, to stride: Int32)
        -> Bool
    {
        dk_tflite_edit_conv_stride(data, 0, index, stride, stride) == 1
    }

    /// Tensor `index`'s buffer index.
    public static func buffer(_ data: UnsafePointer<UInt8>, tensor index: Int32) -> UInt32 {
        var tensor = DKTFLiteTensor()
        dk_tflite_tensor(data, 0, UInt32(index), &tensor)
        return tensor.buffer
    }

    public static func setScale(_ data: UnsafeMutablePointer<UInt8>, tensor: Int32, index: UInt32 = 0, to value: Float)
        -> Bool
    {
        dk_tflite_edit_tensor_scale(data, 0, UInt32(tensor), index, value) == 1
    }

    public static func setZeroPoint(_ data: UnsafeMutablePointer<UInt8>, tensor: Int32, to value: Int64) -> Bool {
        dk_tflite_edit_tensor_zero_point(data, 0, UInt32(tensor), 0, value) == 1
    }

    /// Shortens tensor `tensor`'s list of scales to `count`.
    public static func setScaleCount(_ data: UnsafeMutablePointer<UInt8>, tensor: Int32, to count: UInt32) -> Bool {
        dk_tflite_edit_tensor_scale_count(data, 0, UInt32(tensor), count) == 1
    }
}
