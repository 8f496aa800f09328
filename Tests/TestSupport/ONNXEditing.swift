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

    public static func graph(_ m: Model) -> UnsafeMutablePointer<Onnx__GraphProto> { m.pointee.graph! }
    public static func initializer(_ m: Model, _ i: Int) -> UnsafeMutablePointer<Onnx__TensorProto> {
        graph(m).pointee.initializer[i]!
    }
    public static func node(_ m: Model, _ i: Int) -> UnsafeMutablePointer<Onnx__NodeProto> { graph(m).pointee.node[i]! }
    public static func name(_ p: UnsafeMutablePointer<CChar>?) -> String { p.map { String(cString: $0) } ?? "" }

    /// Index of the first float initializer with at least `rank` dims.
    public static func firstWeight(_ m: Model, rank: Int = 2) throws -> Int {
        let g = graph(m).pointee
        guard
            let i = (0..<g.n_initializer).first(where: {
                initializer(m, $0).pointee.data_type == 1 && initializer(m, $0).pointee.n_dims >= rank
            })
        else {
            throw Failure(description: "no float initializer of rank \(rank)")
        }
        return i
    }

    /// Index of the first node of `opType` (after `skipping` earlier ones).
    public static func firstNode(_ m: Model, _ opType: String, skipping: Int = 0) throws -> Int {
        let g = graph(m).pointee
        let matches = (0..<g.n_node).filter { name(node(m, $0).pointee.op_type) == opType }
        guard skipping < matches.count else { throw Failure(description: "no \(opType) node") }
        return matches[skipping]
    }

    /// A malloc'ed copy of `values`, as protobuf-c frees repeated fields.
    static func cArray(_ values: [Int64]) -> UnsafeMutablePointer<Int64> {
        let p = UnsafeMutablePointer<Int64>(OpaquePointer(malloc(max(values.count, 1) * 8)!))
        for (i, v) in values.enumerated() { p[i] = v }
        return p
    }

    /// Removes initializer `i` from the graph (the last one takes its place) and frees it.
    public static func removeInitializer(_ m: Model, _ i: Int) {
        let g = graph(m)
        onnx__tensor_proto__free_unpacked(initializer(m, i), nil)
        g.pointee.initializer[i] = g.pointee.initializer[g.pointee.n_initializer - 1]
        g.pointee.n_initializer -= 1
    }

    public static func setDims(_ t: UnsafeMutablePointer<Onnx__TensorProto>, _ dims: [Int64]) {
        free(t.pointee.dims)
        t.pointee.dims = cArray(dims)
        t.pointee.n_dims = dims.count
    }

    public static func setString(_ field: inout UnsafeMutablePointer<CChar>?, _ value: String) {
        free(field)
        field = strdup(value)
    }

    /// The node's attribute called `name`.
    public static func attribute(_ n: UnsafeMutablePointer<Onnx__NodeProto>, _ attributeName: String) throws
        -> UnsafeMutablePointer<Onnx__AttributeProto>
    {
        for i in 0..<n.pointee.n_attribute where name(n.pointee.attribute[i]!.pointee.name) == attributeName {
            return n.pointee.attribute[i]!
        }
        throw Failure(description: "node \(name(n.pointee.name)) has no attribute \(attributeName)")
    }

    public static func setInts(_ a: UnsafeMutablePointer<Onnx__AttributeProto>, _ values: [Int64]) {
        free(a.pointee.ints)
        a.pointee.ints = cArray(values)
        a.pointee.n_ints = values.count
    }

    /// Sets the declared shape of the graph's first input (`dim_value`s).
    public static func setInputDims(_ m: Model, _ dims: [Int64]) throws {
        let input = graph(m).pointee.input[0]!
        guard let shape = input.pointee.type?.pointee.tensor_type?.pointee.shape, shape.pointee.n_dim == dims.count
        else {
            throw Failure(description: "the first input has no shape of rank \(dims.count)")
        }
        for (i, d) in dims.enumerated() {
            let dim = shape.pointee.dim[i]!
            dim.pointee.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
            dim.pointee.dim_value = d
        }
    }
}
