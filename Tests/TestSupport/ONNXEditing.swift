import CProtobufC
import Foundation
import ONNXProto

/// Edits of ONNX fixtures through protobuf-c: the message is unpacked, one thing is changed, and it
/// is packed again, so that only that one thing is wrong in an otherwise valid file.
public enum ONNXEditing {
    public typealias Model = UnsafeMutablePointer<Onnx__ModelProto>
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The fixture's bytes with `edit` applied to its unpacked message.
    public static func mutated(_ fixture: String, _ edit: (Model) throws -> Void) throws -> Data {
        let data = try Fixtures.data(fixture)
        guard
            let model = data.withUnsafeBytes({
                onnx__model_proto__unpack(nil, $0.count, $0.bindMemory(to: UInt8.self).baseAddress)
            })
        else { throw Failure(description: "\(fixture) does not unpack") }
        defer { onnx__model_proto__free_unpacked(model, nil) }
        try edit(model)
        var out = [UInt8](repeating: 0, count: onnx__model_proto__get_packed_size(model))
        _ = onnx__model_proto__pack(model, &out)
        return Data(out)
    }

    public static func graph(_ modelProto: Model) -> UnsafeMutablePointer<Onnx__GraphProto> {
        modelProto.pointee.graph!
    }
    public static func initializer(_ modelProto: Model, _ index: Int) -> UnsafeMutablePointer<Onnx__TensorProto> {
        graph(modelProto).pointee.initializer[index]!
    }
    public static func node(_ modelProto: Model, _ index: Int) -> UnsafeMutablePointer<Onnx__NodeProto> {
        graph(modelProto).pointee.node[index]!
    }
    public static func name(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
        pointer.map { String(cString: $0) } ?? ""
    }

    /// The initializer named `tensor`.
    public static func initializer(_ modelProto: Model, named tensor: String) throws -> UnsafeMutablePointer<
        Onnx__TensorProto
    > {
        let graphProto = graph(modelProto).pointee
        guard
            let index = (0..<graphProto.n_initializer).first(where: {
                name(initializer(modelProto, $0).pointee.name) == tensor
            })
        else { throw Failure(description: "no initializer '\(tensor)'") }
        return initializer(modelProto, index)
    }

    /// The float32 values of the initializer `name` replaced by `values` (raw or in float_data, as it stores them).
    public static func setFloats(_ modelProto: Model, _ name: String, _ values: [Float]) throws {
        let tensor = try initializer(modelProto, named: name)
        if let raw = tensor.pointee.raw_data.data, tensor.pointee.raw_data.len > 0 {
            let count = Int(tensor.pointee.raw_data.len) / 4
            raw.withMemoryRebound(to: Float.self, capacity: count) { floats in
                for i in 0..<min(count, values.count) { floats[i] = values[i] }
            }
        } else {
            for i in 0..<min(tensor.pointee.n_float_data, values.count) { tensor.pointee.float_data[i] = values[i] }
        }
    }

    /// The float32 values of the initializer `name`.
    public static func floats(_ modelProto: Model, _ name: String) throws -> [Float] {
        let tensor = try initializer(modelProto, named: name)
        if let raw = tensor.pointee.raw_data.data, tensor.pointee.raw_data.len > 0 {
            let count = Int(tensor.pointee.raw_data.len) / 4
            return raw.withMemoryRebound(to: Float.self, capacity: count) {
                Array(UnsafeBufferPointer(start: $0, count: count))
            }
        }
        return Array(UnsafeBufferPointer(start: tensor.pointee.float_data, count: tensor.pointee.n_float_data))
    }

    /// Index of the first float initializer with at least `rank` dims.
    public static func firstWeight(_ modelProto: Model, rank: Int = 2) throws -> Int {
        let graphProto = graph(modelProto).pointee
        guard
            let index = (0..<graphProto.n_initializer).first(where: {
                initializer(modelProto, $0).pointee.data_type == 1 && initializer(modelProto, $0).pointee.n_dims >= rank
            })
        else {
            throw Failure(description: "no float initializer of rank \(rank)")
        }
        return index
    }

    /// Index of the first node of `opType` (after `skipping` earlier ones).
    public static func firstNode(_ modelProto: Model, _ opType: String, skipping: Int = 0) throws -> Int {
        let graphProto = graph(modelProto).pointee
        let matches = (0..<graphProto.n_node).filter { name(node(modelProto, $0).pointee.op_type) == opType }
        guard skipping < matches.count else { throw Failure(description: "no \(opType) node") }
        return matches[skipping]
    }

    /// A malloc'ed copy of `values`, as protobuf-c frees repeated fields.
    static func cArray(_ values: [Int64]) -> UnsafeMutablePointer<Int64> {
        let pointer = UnsafeMutablePointer<Int64>(OpaquePointer(malloc(max(values.count, 1) * 8)!))
        for (index, v) in values.enumerated() { pointer[index] = v }
        return pointer
    }

    /// Removes initializer `i` from the graph (the last one takes its place) and frees it.
    public static func removeInitializer(_ modelProto: Model, _ index: Int) {
        let graphProto = graph(modelProto)
        onnx__tensor_proto__free_unpacked(initializer(modelProto, index), nil)
        graphProto.pointee.initializer[index] = graphProto.pointee.initializer[graphProto.pointee.n_initializer - 1]
        graphProto.pointee.n_initializer -= 1
    }

    public static func setDims(_ tensorProto: UnsafeMutablePointer<Onnx__TensorProto>, _ dims: [Int64]) {
        free(tensorProto.pointee.dims)
        tensorProto.pointee.dims = cArray(dims)
        tensorProto.pointee.n_dims = dims.count
    }

    public static func setString(_ field: inout UnsafeMutablePointer<CChar>?, _ value: String) {
        free(field)
        field = strdup(value)
    }

    /// The node's attribute called `name`.
    public static func attribute(_ nodeProto: UnsafeMutablePointer<Onnx__NodeProto>, _ attributeName: String) throws
        -> UnsafeMutablePointer<Onnx__AttributeProto>
    {
        for index in 0..<nodeProto.pointee.n_attribute
        where name(nodeProto.pointee.attribute[index]!.pointee.name) == attributeName {
            return nodeProto.pointee.attribute[index]!
        }
        throw Failure(description: "node \(name(nodeProto.pointee.name)) has no attribute \(attributeName)")
    }

    public static func setInts(_ attributeProto: UnsafeMutablePointer<Onnx__AttributeProto>, _ values: [Int64]) {
        free(attributeProto.pointee.ints)
        attributeProto.pointee.ints = cArray(values)
        attributeProto.pointee.n_ints = values.count
    }

    /// Sets the declared shape of the graph's first input (`dim_value`s).
    public static func setInputDims(_ modelProto: Model, _ dims: [Int64]) throws {
        let input = graph(modelProto).pointee.input[0]!
        guard let shape = input.pointee.type?.pointee.tensor_type?.pointee.shape, shape.pointee.n_dim == dims.count
        else {
            throw Failure(description: "the first input has no shape of rank \(dims.count)")
        }
        for (index, d) in dims.enumerated() {
            let dim = shape.pointee.dim[index]!
            dim.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
            dim.pointee.dim_value = d
        }
    }
}
