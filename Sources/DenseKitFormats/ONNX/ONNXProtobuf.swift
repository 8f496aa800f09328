import CProtobufC
import DenseKitGraph
import Foundation
import ONNXProto

/// The one place that touches protobuf-c: unpacks a ModelProto and copies what DenseKit needs
/// into Swift values, then frees the C message; and packs an `ONNXModel` built in Swift (the ONNX
/// writer's) into a ModelProto's bytes.
package enum ONNXProtobuf {
    /// Protobuf messages are limited to 2 GiB; larger weights must be external data.
    package static let maximumFileBytes = 2 << 30

    package static func read(_ data: Data) throws -> ONNXModel {
        guard !data.isEmpty else { throw ImportError.malformed("empty file") }
        guard data.count <= maximumFileBytes else {
            throw ImportError.malformed("\(data.count) bytes exceeds the 2 GiB protobuf limit")
        }
        // protobuf-c recurses once per nested message: the nesting is bounded before it reads anything.
        try ONNXNesting.check(data)
        let message = data.withUnsafeBytes {
            (buffer: UnsafeRawBufferPointer) -> UnsafeMutablePointer<Onnx__ModelProto>? in
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
            var location = ""
            var offset = 0
            var length: Int? = nil
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
        return ONNXTensorRef(
            name: string(t.name), dims: Array(buffer(t.dims, t.n_dims)),
            dataType: t.data_type, payload: payload)
    }

    private static func readValueInfo(_ v: Onnx__ValueInfoProto) -> ONNXValueInfo {
        var elementType: Int32 = 0
        var dims: [Int?] = []
        var params: [String?] = []
        if let type = v.type, type.pointee.value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE,
            let tensor = type.pointee.tensor_type
        {
            elementType = tensor.pointee.elem_type
            if let shape = tensor.pointee.shape {
                for d in buffer(shape.pointee.dim, shape.pointee.n_dim) {
                    let value = d.flatMap {
                        $0.pointee.value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                            ? Int($0.pointee.dim_value) : nil
                    }
                    let param = d.flatMap {
                        $0.pointee.value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                            ? string($0.pointee.dim_param) : nil
                    }
                    dims.append(value)
                    params.append(param)
                }
            }
        }
        return ONNXValueInfo(name: string(v.name), elementType: elementType, dims: dims, dimParams: params)
    }

    // MARK: writing

    /// Packs `model` (tensors as raw little-endian data or external references) into a ModelProto.
    package static func encode(_ model: ONNXModel) throws -> Data {
        let arena = Arena()
        var m = Onnx__ModelProto()
        onnx__model_proto__init(&m)
        m.has_ir_version = 1
        m.ir_version = Int64(model.irVersion)
        m.producer_name = arena.string(model.producerName)
        m.producer_version = arena.string(model.producerVersion)
        let opsets = model.opsets.sorted { $0.key < $1.key }.map {
            domain, version -> UnsafeMutablePointer<Onnx__OperatorSetIdProto> in
            var o = Onnx__OperatorSetIdProto()
            onnx__operator_set_id_proto__init(&o)
            o.domain = arena.string(domain)
            o.has_version = 1
            o.version = Int64(version)
            return arena.object(o)
        }
        (m.n_opset_import, m.opset_import) = arena.array(opsets)
        m.graph = try graph(model.graph, arena)
        let size = onnx__model_proto__get_packed_size(&m)
        guard size <= maximumFileBytes else {
            throw WriteError.doesNotFit(
                format: "onnx", problem: "the model needs \(size) bytes, more than protobuf's 2 GiB limit")
        }
        var data = Data(count: size)
        let packed = data.withUnsafeMutableBytes {
            onnx__model_proto__pack(&m, $0.bindMemory(to: UInt8.self).baseAddress)
        }
        guard packed == size else {
            throw WriteError.doesNotFit(format: "onnx", problem: "protobuf-c packed \(packed) of \(size) bytes")
        }
        return data
    }

    private static func graph(_ g: ONNXGraph, _ arena: Arena) throws -> UnsafeMutablePointer<Onnx__GraphProto> {
        var out = Onnx__GraphProto()
        onnx__graph_proto__init(&out)
        out.name = arena.string("densekit")
        (out.n_node, out.node) = arena.array(g.nodes.map { node($0, arena) })
        (out.n_initializer, out.initializer) = arena.array(g.initializers.map { tensor($0, arena) })
        (out.n_input, out.input) = arena.array(g.inputs.map { valueInfo($0, arena) })
        (out.n_output, out.output) = arena.array(g.outputs.map { valueInfo($0, arena) })
        return arena.object(out)
    }

    private static func node(_ n: ONNXNode, _ arena: Arena) -> UnsafeMutablePointer<Onnx__NodeProto> {
        var out = Onnx__NodeProto()
        onnx__node_proto__init(&out)
        out.name = arena.string(n.name)
        out.op_type = arena.string(n.opType)
        if !n.domain.isEmpty { out.domain = arena.string(n.domain) }
        (out.n_input, out.input) = arena.array(n.inputs.map { Optional(arena.string($0)) })
        (out.n_output, out.output) = arena.array(n.outputs.map { Optional(arena.string($0)) })
        let attributes = n.attributes.sorted { $0.key < $1.key }.map {
            name, value -> UnsafeMutablePointer<Onnx__AttributeProto> in
            var a = Onnx__AttributeProto()
            onnx__attribute_proto__init(&a)
            a.name = arena.string(name)
            a.has_type = 1
            switch value {
            case .float(let f):
                a.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT
                a.has_f = 1
                a.f = f
            case .int(let i):
                a.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT
                a.has_i = 1
                a.i = i
            case .string(let s):
                a.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING
                a.has_s = 1
                a.s = arena.bytes(Data(s.utf8))
            case .floats(let v):
                a.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS
                (a.n_floats, a.floats) = arena.array(v)
            case .ints(let v):
                a.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS
                (a.n_ints, a.ints) = arena.array(v)
            case .tensor(let t):
                a.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR
                a.t = tensor(t, arena)
            case .other: a.has_type = 0
            }
            return arena.object(a)
        }
        (out.n_attribute, out.attribute) = arena.array(attributes)
        return arena.object(out)
    }

    private static func tensor(_ t: ONNXTensorRef, _ arena: Arena) -> UnsafeMutablePointer<Onnx__TensorProto> {
        var out = Onnx__TensorProto()
        onnx__tensor_proto__init(&out)
        out.name = arena.string(t.name)
        (out.n_dims, out.dims) = arena.array(t.dims)
        out.has_data_type = 1
        out.data_type = t.dataType
        switch t.payload {
        case .raw(let data):
            out.has_raw_data = 1
            out.raw_data = arena.bytes(data)
        case .floats(let v): (out.n_float_data, out.float_data) = arena.array(v)
        case .int32s(let v): (out.n_int32_data, out.int32_data) = arena.array(v)
        case .int64s(let v): (out.n_int64_data, out.int64_data) = arena.array(v)
        case .doubles(let v): (out.n_double_data, out.double_data) = arena.array(v)
        case .external(let location, let offset, let length):
            out.has_data_location = 1
            out.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL
            let entries =
                [("location", location), ("offset", "\(offset)")] + (length.map { [("length", "\($0)")] } ?? [])
            (out.n_external_data, out.external_data) = arena.array(
                entries.map { key, value -> UnsafeMutablePointer<Onnx__StringStringEntryProto>? in
                    var e = Onnx__StringStringEntryProto()
                    onnx__string_string_entry_proto__init(&e)
                    e.key = arena.string(key)
                    e.value = arena.string(value)
                    return arena.object(e)
                })
        case .none: break
        }
        return arena.object(out)
    }

    private static func valueInfo(_ v: ONNXValueInfo, _ arena: Arena) -> UnsafeMutablePointer<Onnx__ValueInfoProto> {
        let dims = v.dims.enumerated().map { i, value -> UnsafeMutablePointer<Onnx__TensorShapeProto__Dimension>? in
            var d = Onnx__TensorShapeProto__Dimension()
            onnx__tensor_shape_proto__dimension__init(&d)
            if let value {
                d.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                d.dim_value = Int64(value)
            } else if i < v.dimParams.count, let param = v.dimParams[i] {
                d.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                d.dim_param = arena.string(param)
            }
            return arena.object(d)
        }
        var shape = Onnx__TensorShapeProto()
        onnx__tensor_shape_proto__init(&shape)
        (shape.n_dim, shape.dim) = arena.array(dims)
        var tensorType = Onnx__TypeProto__Tensor()
        onnx__type_proto__tensor__init(&tensorType)
        tensorType.has_elem_type = 1
        tensorType.elem_type = v.elementType
        tensorType.shape = arena.object(shape)
        var type = Onnx__TypeProto()
        onnx__type_proto__init(&type)
        type.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
        type.tensor_type = arena.object(tensorType)
        var out = Onnx__ValueInfoProto()
        onnx__value_info_proto__init(&out)
        out.name = arena.string(v.name)
        out.type = arena.object(type)
        return arena.object(out)
    }

    /// C memory for a message being packed, all freed together when the arena goes.
    private final class Arena {
        private var blocks: [UnsafeMutableRawPointer] = []
        deinit { for b in blocks { free(b) } }

        private func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
            let p = malloc(max(bytes, 1))!
            blocks.append(p)
            return p
        }

        func string(_ s: String) -> UnsafeMutablePointer<CChar> {
            let utf8 = Array(s.utf8CString)
            let p = allocate(utf8.count).bindMemory(to: CChar.self, capacity: utf8.count)
            p.initialize(from: utf8, count: utf8.count)
            return p
        }

        func object<T>(_ value: T) -> UnsafeMutablePointer<T> {
            let p = allocate(MemoryLayout<T>.stride).bindMemory(to: T.self, capacity: 1)
            p.initialize(to: value)
            return p
        }

        func array<T>(_ values: [T]) -> (Int, UnsafeMutablePointer<T>?) {
            guard !values.isEmpty else { return (0, nil) }
            let p = allocate(MemoryLayout<T>.stride * values.count).bindMemory(to: T.self, capacity: values.count)
            p.initialize(from: values, count: values.count)
            return (values.count, p)
        }

        func array<T>(_ values: [UnsafeMutablePointer<T>]) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<T>?>?) {
            array(values.map { Optional($0) })
        }

        func bytes(_ data: Data) -> ProtobufCBinaryData {
            let p = allocate(data.count)
            data.withUnsafeBytes { if let base = $0.baseAddress { p.copyMemory(from: base, byteCount: data.count) } }
            return ProtobufCBinaryData(len: data.count, data: p.bindMemory(to: UInt8.self, capacity: data.count))
        }
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
