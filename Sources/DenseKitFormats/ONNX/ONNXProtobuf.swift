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
        let modelProto = model.pointee
        guard let graph = modelProto.graph else { throw ImportError.malformed("ModelProto has no graph") }
        var opsets: [String: Int] = [:]
        for op in buffer(modelProto.opset_import, modelProto.n_opset_import) {
            guard let op else { continue }
            opsets[string(op.pointee.domain)] = Int(op.pointee.version)
        }
        return ONNXModel(
            irVersion: Int(modelProto.ir_version),
            producerName: string(modelProto.producer_name),
            producerVersion: string(modelProto.producer_version),
            opsets: opsets,
            graph: try readGraph(graph.pointee))
    }

    private static func readGraph(_ graph: Onnx__GraphProto) throws -> ONNXGraph {
        let nodes = try buffer(graph.node, graph.n_node).map { node -> ONNXNode in
            guard let node else { throw ImportError.malformed("null node") }
            return readNode(node.pointee)
        }
        let initializers = try buffer(graph.initializer, graph.n_initializer).map { tensor -> ONNXTensorRef in
            guard let tensor else { throw ImportError.malformed("null initializer") }
            return readTensor(tensor)
        }
        return ONNXGraph(
            nodes: nodes, initializers: initializers,
            inputs: buffer(graph.input, graph.n_input).compactMap { $0.map { readValueInfo($0.pointee) } },
            outputs: buffer(graph.output, graph.n_output).compactMap { $0.map { readValueInfo($0.pointee) } })
    }

    private static func readNode(_ node: Onnx__NodeProto) -> ONNXNode {
        var attributes: [String: ONNXAttribute] = [:]
        for attribute in buffer(node.attribute, node.n_attribute) {
            guard let attribute else { continue }
            attributes[string(attribute.pointee.name)] = readAttribute(attribute.pointee)
        }
        return ONNXNode(
            name: string(node.name), opType: string(node.op_type), domain: string(node.domain),
            inputs: buffer(node.input, node.n_input).map { string($0) },
            outputs: buffer(node.output, node.n_output).map { string($0) },
            attributes: attributes)
    }

    private static func readAttribute(_ attribute: Onnx__AttributeProto) -> ONNXAttribute {
        switch attribute.type {
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT: return .float(attribute.f)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT: return .int(attribute.i)
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
            return .string(String(decoding: bytes(attribute.s), as: UTF8.self))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
            return .floats(Array(buffer(attribute.floats, attribute.n_floats)))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS: return .ints(Array(buffer(attribute.ints, attribute.n_ints)))
        case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
            if let tensor = attribute.t { return .tensor(readTensor(tensor)) }
            return .other
        default: return .other
        }
    }

    /// Raw bytes are taken over from protobuf-c rather than copied (weights are most of a file):
    /// the Data frees them, and the message no longer points at them.
    private static func readTensor(_ pointer: UnsafeMutablePointer<Onnx__TensorProto>) -> ONNXTensorRef {
        let tensor = pointer.pointee
        let payload: ONNXTensorRef.Payload
        if tensor.has_data_location != 0 && tensor.data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL {
            var location = ""
            var offset = 0
            var length: Int? = nil
            for entry in buffer(tensor.external_data, tensor.n_external_data) {
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
        } else if tensor.has_raw_data != 0 {
            if let data = tensor.raw_data.data, tensor.raw_data.len > 0 {
                payload = .raw(Data(bytesNoCopy: data, count: tensor.raw_data.len, deallocator: .free))
                pointer.pointee.raw_data = ProtobufCBinaryData(len: 0, data: nil)
            } else {
                payload = .raw(Data())
            }
        } else if tensor.n_float_data > 0 {
            payload = .floats(Array(buffer(tensor.float_data, tensor.n_float_data)))
        } else if tensor.n_int32_data > 0 {
            payload = .int32s(Array(buffer(tensor.int32_data, tensor.n_int32_data)))
        } else if tensor.n_int64_data > 0 {
            payload = .int64s(Array(buffer(tensor.int64_data, tensor.n_int64_data)))
        } else if tensor.n_double_data > 0 {
            payload = .doubles(Array(buffer(tensor.double_data, tensor.n_double_data)))
        } else {
            payload = .none
        }
        return ONNXTensorRef(
            name: string(tensor.name), dims: Array(buffer(tensor.dims, tensor.n_dims)),
            dataType: tensor.data_type, payload: payload)
    }

    private static func readValueInfo(_ info: Onnx__ValueInfoProto) -> ONNXValueInfo {
        var elementType: Int32 = 0
        var dims: [Int?] = []
        var params: [String?] = []
        if let type = info.type, type.pointee.value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE,
            let tensor = type.pointee.tensor_type
        {
            elementType = tensor.pointee.elem_type
            if let shape = tensor.pointee.shape {
                for dimension in buffer(shape.pointee.dim, shape.pointee.n_dim) {
                    let value = dimension.flatMap {
                        $0.pointee.value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                            ? Int($0.pointee.dim_value) : nil
                    }
                    let param = dimension.flatMap {
                        $0.pointee.value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                            ? string($0.pointee.dim_param) : nil
                    }
                    dims.append(value)
                    params.append(param)
                }
            }
        }
        return ONNXValueInfo(name: string(info.name), elementType: elementType, dims: dims, dimParams: params)
    }

    // MARK: writing

    /// Packs `model` (tensors as raw little-endian data or external references) into a ModelProto.
    package static func encode(_ model: ONNXModel) throws -> Data {
        let arena = Arena()
        var modelProto = Onnx__ModelProto()
        onnx__model_proto__init(&modelProto)
        modelProto.has_ir_version = 1
        modelProto.ir_version = Int64(model.irVersion)
        modelProto.producer_name = arena.string(model.producerName)
        modelProto.producer_version = arena.string(model.producerVersion)
        let opsets = model.opsets.sorted { $0.key < $1.key }.map {
            domain, version -> UnsafeMutablePointer<Onnx__OperatorSetIdProto> in
            var opset = Onnx__OperatorSetIdProto()
            onnx__operator_set_id_proto__init(&opset)
            opset.domain = arena.string(domain)
            opset.has_version = 1
            opset.version = Int64(version)
            return arena.object(opset)
        }
        (modelProto.n_opset_import, modelProto.opset_import) = arena.array(opsets)
        modelProto.graph = try graph(model.graph, arena)
        let size = onnx__model_proto__get_packed_size(&modelProto)
        guard size <= maximumFileBytes else {
            throw WriteError.doesNotFit(
                format: "onnx", problem: "the model needs \(size) bytes, more than protobuf's 2 GiB limit")
        }
        var data = Data(count: size)
        let packed = data.withUnsafeMutableBytes {
            onnx__model_proto__pack(&modelProto, $0.bindMemory(to: UInt8.self).baseAddress)
        }
        guard packed == size else {
            throw WriteError.doesNotFit(format: "onnx", problem: "protobuf-c packed \(packed) of \(size) bytes")
        }
        return data
    }

    private static func graph(_ source: ONNXGraph, _ arena: Arena) throws -> UnsafeMutablePointer<Onnx__GraphProto> {
        var out = Onnx__GraphProto()
        onnx__graph_proto__init(&out)
        out.name = arena.string("densekit")
        (out.n_node, out.node) = arena.array(source.nodes.map { node($0, arena) })
        (out.n_initializer, out.initializer) = arena.array(source.initializers.map { tensor($0, arena) })
        (out.n_input, out.input) = arena.array(source.inputs.map { valueInfo($0, arena) })
        (out.n_output, out.output) = arena.array(source.outputs.map { valueInfo($0, arena) })
        return arena.object(out)
    }

    private static func node(_ source: ONNXNode, _ arena: Arena) -> UnsafeMutablePointer<Onnx__NodeProto> {
        var out = Onnx__NodeProto()
        onnx__node_proto__init(&out)
        out.name = arena.string(source.name)
        out.op_type = arena.string(source.opType)
        if !source.domain.isEmpty { out.domain = arena.string(source.domain) }
        (out.n_input, out.input) = arena.array(source.inputs.map { Optional(arena.string($0)) })
        (out.n_output, out.output) = arena.array(source.outputs.map { Optional(arena.string($0)) })
        let attributes = source.attributes.sorted { $0.key < $1.key }.map {
            name, value -> UnsafeMutablePointer<Onnx__AttributeProto> in
            var attribute = Onnx__AttributeProto()
            onnx__attribute_proto__init(&attribute)
            attribute.name = arena.string(name)
            attribute.has_type = 1
            switch value {
            case .float(let number):
                attribute.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT
                attribute.has_f = 1
                attribute.f = number
            case .int(let integer):
                attribute.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT
                attribute.has_i = 1
                attribute.i = integer
            case .string(let text):
                attribute.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING
                attribute.has_s = 1
                attribute.s = arena.bytes(Data(text.utf8))
            case .floats(let values):
                attribute.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS
                (attribute.n_floats, attribute.floats) = arena.array(values)
            case .ints(let values):
                attribute.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS
                (attribute.n_ints, attribute.ints) = arena.array(values)
            case .tensor(let tensorValue):
                attribute.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR
                attribute.t = tensor(tensorValue, arena)
            case .other: attribute.has_type = 0
            }
            return arena.object(attribute)
        }
        (out.n_attribute, out.attribute) = arena.array(attributes)
        return arena.object(out)
    }

    private static func tensor(_ source: ONNXTensorRef, _ arena: Arena) -> UnsafeMutablePointer<Onnx__TensorProto> {
        var out = Onnx__TensorProto()
        onnx__tensor_proto__init(&out)
        out.name = arena.string(source.name)
        (out.n_dims, out.dims) = arena.array(source.dims)
        out.has_data_type = 1
        out.data_type = source.dataType
        switch source.payload {
        case .raw(let data):
            out.has_raw_data = 1
            out.raw_data = arena.bytes(data)
        case .floats(let values): (out.n_float_data, out.float_data) = arena.array(values)
        case .int32s(let values): (out.n_int32_data, out.int32_data) = arena.array(values)
        case .int64s(let values): (out.n_int64_data, out.int64_data) = arena.array(values)
        case .doubles(let values): (out.n_double_data, out.double_data) = arena.array(values)
        case .external(let location, let offset, let length):
            out.has_data_location = 1
            out.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL
            let entries =
                [("location", location), ("offset", "\(offset)")] + (length.map { [("length", "\($0)")] } ?? [])
            (out.n_external_data, out.external_data) = arena.array(
                entries.map { key, value -> UnsafeMutablePointer<Onnx__StringStringEntryProto>? in
                    var entry = Onnx__StringStringEntryProto()
                    onnx__string_string_entry_proto__init(&entry)
                    entry.key = arena.string(key)
                    entry.value = arena.string(value)
                    return arena.object(entry)
                })
        case .none: break
        }
        return arena.object(out)
    }

    private static func valueInfo(_ source: ONNXValueInfo, _ arena: Arena) -> UnsafeMutablePointer<Onnx__ValueInfoProto>
    {
        let dims = source.dims.enumerated().map {
            i, value -> UnsafeMutablePointer<Onnx__TensorShapeProto__Dimension>? in
            var dimension = Onnx__TensorShapeProto__Dimension()
            onnx__tensor_shape_proto__dimension__init(&dimension)
            if let value {
                dimension.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE
                dimension.dim_value = Int64(value)
            } else if i < source.dimParams.count, let param = source.dimParams[i] {
                dimension.value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                dimension.dim_param = arena.string(param)
            }
            return arena.object(dimension)
        }
        var shape = Onnx__TensorShapeProto()
        onnx__tensor_shape_proto__init(&shape)
        (shape.n_dim, shape.dim) = arena.array(dims)
        var tensorType = Onnx__TypeProto__Tensor()
        onnx__type_proto__tensor__init(&tensorType)
        tensorType.has_elem_type = 1
        tensorType.elem_type = source.elementType
        tensorType.shape = arena.object(shape)
        var type = Onnx__TypeProto()
        onnx__type_proto__init(&type)
        type.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE
        type.tensor_type = arena.object(tensorType)
        var out = Onnx__ValueInfoProto()
        onnx__value_info_proto__init(&out)
        out.name = arena.string(source.name)
        out.type = arena.object(type)
        return arena.object(out)
    }

    /// C memory for a message being packed, all freed together when the arena goes.
    private final class Arena {
        private var blocks: [UnsafeMutableRawPointer] = []
        deinit { for b in blocks { free(b) } }

        private func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
            let pointer = malloc(max(bytes, 1))!
            blocks.append(pointer)
            return pointer
        }

        func string(_ text: String) -> UnsafeMutablePointer<CChar> {
            let utf8 = Array(text.utf8CString)
            let pointer = allocate(utf8.count).bindMemory(to: CChar.self, capacity: utf8.count)
            pointer.initialize(from: utf8, count: utf8.count)
            return pointer
        }

        func object<T>(_ value: T) -> UnsafeMutablePointer<T> {
            let pointer = allocate(MemoryLayout<T>.stride).bindMemory(to: T.self, capacity: 1)
            pointer.initialize(to: value)
            return pointer
        }

        func array<T>(_ values: [T]) -> (Int, UnsafeMutablePointer<T>?) {
            guard !values.isEmpty else { return (0, nil) }
            let pointer = allocate(MemoryLayout<T>.stride * values.count).bindMemory(to: T.self, capacity: values.count)
            pointer.initialize(from: values, count: values.count)
            return (values.count, pointer)
        }

        func array<T>(_ values: [UnsafeMutablePointer<T>]) -> (Int, UnsafeMutablePointer<UnsafeMutablePointer<T>?>?) {
            array(values.map { Optional($0) })
        }

        func bytes(_ data: Data) -> ProtobufCBinaryData {
            let pointer = allocate(data.count)
            data.withUnsafeBytes {
                if let base = $0.baseAddress { pointer.copyMemory(from: base, byteCount: data.count) }
            }
            return ProtobufCBinaryData(len: data.count, data: pointer.bindMemory(to: UInt8.self, capacity: data.count))
        }
    }

    // MARK: C helpers

    private static func string(_ pointer: UnsafeMutablePointer<CChar>?) -> String {
        pointer.map { String(cString: $0) } ?? ""
    }

    private static func bytes(_ binary: ProtobufCBinaryData) -> [UInt8] {
        guard let data = binary.data, binary.len > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: data, count: binary.len))
    }

    private static func buffer<T>(_ pointer: UnsafeMutablePointer<T>?, _ count: Int) -> UnsafeBufferPointer<T> {
        UnsafeBufferPointer(start: count > 0 ? pointer : nil, count: pointer == nil ? 0 : count)
    }
}
