import Foundation

/// The parts of an ONNX ModelProto DenseKit reads, copied out of protobuf-c's structs (and writes:
/// the ONNX writer builds one and `ONNXProtobuf.encode` packs it).
struct ONNXModel {
    var irVersion: Int
    var producerName: String
    var producerVersion: String
    /// Opset version per domain ("" is the default ONNX domain).
    var opsets: [String: Int]
    var graph: ONNXGraph
}

struct ONNXGraph {
    var nodes: [ONNXNode]
    var initializers: [ONNXTensorRef]
    var inputs: [ONNXValueInfo]
    var outputs: [ONNXValueInfo]
}

struct ONNXNode {
    var name: String
    var opType: String
    var domain: String
    var inputs: [String]
    var outputs: [String]
    var attributes: [String: ONNXAttribute]

    /// "Conv 'node_name'" for messages.
    var label: String { name.isEmpty ? "\(opType) node producing '\(outputs.first ?? "?")'" : "\(opType) node '\(name)'" }
}

enum ONNXAttribute {
    case float(Float)
    case int(Int64)
    case string(String)
    case floats([Float])
    case ints([Int64])
    case tensor(ONNXTensorRef)
    case other
}

struct ONNXValueInfo {
    var name: String
    var elementType: Int32
    /// Dimensions; nil where symbolic or absent.
    var dims: [Int?]
    /// The symbolic names (`dim_param`) of the dims that have one, nil elsewhere (may be empty).
    var dimParams: [String?] = []
}

/// A TensorProto before its payload is decoded.
struct ONNXTensorRef {
    enum Payload {
        case raw(Data)
        case floats([Float])
        case int32s([Int32])
        case int64s([Int64])
        case doubles([Double])
        case external(location: String, offset: Int, length: Int?)
        case none
    }
    var name: String
    var dims: [Int64]
    var dataType: Int32
    var payload: Payload
}
