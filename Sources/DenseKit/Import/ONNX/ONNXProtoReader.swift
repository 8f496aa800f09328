import CProtobufC
import Foundation
import ONNXProto

/// The one place that touches protobuf-c: unpacks a ModelProto and copies what DenseKit needs
/// into Swift values, then frees the C message.
enum ONNXProtoReader {
    /// Protobuf messages are limited to 2 GiB; larger weights must be external data.
    static let maximumFileBytes = 2 << 30

    static func read(_ data: Data) throws -> ONNXModel {
        guard !data.isEmpty else { throw ImportError.malformed("empty file") }
        guard data.count <= maximumFileBytes else {
            throw ImportError.malformed("\(data.count) bytes exceeds the 2 GiB protobuf limit")
        }
        let message = data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) -> UnsafeMutablePointer<Onnx__ModelProto>? in
            onnx__model_proto__unpack(nil, buffer.count, buffer.bindMemory(to: UInt8.self).baseAddress)
        }
        guard let model = message else {
            throw ImportError.malformed("not an ONNX model (protobuf parse failed: truncated or corrupt)")
        }
        defer { onnx__model_proto__free_unpacked(model, nil) }
        let m = model.pointee
        guard let graph = m.graph else { throw ImportError.malformed("ModelProto has no graph") }
        var opsets: [String: Int] = [:]
        for op in buffer(m.opset_import, m.n_opset_import) {
            guard let op else { continue }
            opsets[string(op.pointee.domain)] = Int(op.pointee.version)
        }
        return ONNXModel(
            irVersion: Int(m.ir_version),
            producerName: string(m.producer_name),
            producerVersion: string(m.producer_version),
            opsets: opsets,
            graph: try readGraph(graph.pointee))
    }

    private static func readGraph(_ g: Onnx__GraphProto) throws -> ONNXGraph {
        let nodes = try buffer(g.node, g.n_node).map { n -> ONNXNode in
            guard let n else { throw ImportError.malformed("null node") }
            return readNode(n.pointee)
        }
        let initializers = try buffer(g.initializer, g.n_initializer).map { t -> ONNXTensorRef in
            guard let t else { throw ImportError.malformed("null initializer") }
            return readTensor(t)
        }
        return ONNXGraph(
            nodes: nodes, initializers: initializers,
            inputs: buffer(g.input, g.n_input).compactMap { $0.map { readValueInfo($0.pointee) } },
            outputs: buffer(g.output, g.n_output).compactMap { $0.map { readValueInfo($0.pointee) } })
    }

    private static func readNode(_ n: Onnx__NodeProto) -> ONNXNode {
        var attributes: [String: ONNXAttribute] = [:]
        for a in buffer(n.attribute, n.n_attribute) {
            guard let a else { continue }
            attributes[string(a.pointee.name)] = readAttribute(a.pointee)
        }
        return ONNXNode(
            name: string(n.name), opType: string(n.op_type), domain: string(n.domain),
            inputs: buffer(n.input, n.n_input).map { string($0) },
            outputs: buffer(n.output, n.n_output).map { string($0) },
            attributes: attributes)
    }

    private static func readAttribute(_ a: Onnx__AttributeProto) -> ONNXAttribute {
        switch a.type {
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: return .float(a.f)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: return .int(a.i)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
            return .string(String(decoding: bytes(a.s), as: UTF8.self))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS: return .floats(Array(buffer(a.floats, a.n_floats)))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS: return .ints(Array(buffer(a.ints, a.n_ints)))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
            if let t = a.t { return .tensor(readTensor(t)) }
            return .other
        default: return .other
        }
    }

    /// Raw bytes are taken over from protobuf-c rather than copied (weights are most of a file):
    /// the Data frees them, and the message no longer points at them.
    private static func readTensor(_ p: UnsafeMutablePointer<Onnx__TensorProto>) -> ONNXTensorRef {
        let t = p.pointee
        let payload: ONNXTensorRef.Payload
        if t.has_data_location != 0 && t.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL {
            var location = "", offset = 0, length: Int? = nil
            for entry in buffer(t.external_data, t.n_external_data) {
                guard let entry else { continue }
                let value = string(entry.pointee.value)
                switch string(entry.pointee.key) {
                case "location": location = value
                case "offset": offset = Int(value) ?? -1
                case "length": length = Int(value) ?? -1
                default: break
                }
            }
            payload = .external(location: location, offset: offset, length: length)
        } else if t.has_raw_data != 0 {
            if let data = t.raw_data.data, t.raw_data.len > 0 {
                payload = .raw(Data(bytesNoCopy: data, count: t.raw_data.len, deallocator: .free))
                p.pointee.raw_data = ProtobufCBinaryData(len: 0, data: nil)
            } else {
                payload = .raw(Data())
            }
        } else if t.n_float_data > 0 {
            payload = .floats(Array(buffer(t.float_data, t.n_float_data)))
        } else if t.n_int32_data > 0 {
            payload = .int32s(Array(buffer(t.int32_data, t.n_int32_data)))
        } else if t.n_int64_data > 0 {
            payload = .int64s(Array(buffer(t.int64_data, t.n_int64_data)))
        } else if t.n_double_data > 0 {
            payload = .doubles(Array(buffer(t.double_data, t.n_double_data)))
        } else {
            payload = .none
        }
        return ONNXTensorRef(name: string(t.name), dims: Array(buffer(t.dims, t.n_dims)),
                             dataType: t.data_type, payload: payload)
    }

    private static func readValueInfo(_ v: Onnx__ValueInfoProto) -> ONNXValueInfo {
        var elementType: Int32 = 0
        var dims: [Int?] = []
        if let type = v.type, type.pointee.value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE,
           let tensor = type.pointee.tensor_type {
            elementType = tensor.pointee.elem_type
            if let shape = tensor.pointee.shape {
                dims = buffer(shape.pointee.dim, shape.pointee.n_dim).map { d in
                    guard let d, d.pointee.value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                    else { return nil }
                    return Int(d.pointee.dim_value)
                }
            }
        }
        return ONNXValueInfo(name: string(v.name), elementType: elementType, dims: dims)
    }

    // MARK: C helpers

    private static func string(_ p: UnsafeMutablePointer<CChar>?) -> String {
        p.map { String(cString: $0) } ?? ""
    }

    private static func bytes(_ b: ProtobufCBinaryData) -> [UInt8] {
        guard let data = b.data, b.len > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: b.len))
    }

    private static func buffer<T>(_ p: UnsafeMutablePointer<T>?, _ n: Int) -> UnsafeBufferPointer<T> {
        UnsafeBufferPointer(start: n > 0 ? p : nil, count: p == nil ? 0 : n)
    }
}
