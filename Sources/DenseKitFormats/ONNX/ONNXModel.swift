import Foundation

/// The parts of an ONNX ModelProto DenseKit reads, copied out of protobuf-c's structs (and writes:
/// the ONNX writer builds one and `ONNXProtobuf.encode` packs it).
package struct ONNXModel {
    package var irVersion: Int
    package var producerName: String
    package var producerVersion: String
    /// Opset version per domain ("" is the default ONNX domain).
    package var opsets: [String: Int]
    package var graph: ONNXGraph
}

package struct ONNXGraph {
    package var nodes: [ONNXNode]
    package var initializers: [ONNXTensorRef]
    package var inputs: [ONNXValueInfo]
    package var outputs: [ONNXValueInfo]
}

package struct ONNXNode {
    package var name: String
    package var opType: String
    package var domain: String
    package var inputs: [String]
    package var outputs: [String]
    package var attributes: [String: ONNXAttribute]

    /// "Conv 'node_name'" for messages.
    package var label: String {
        name.isEmpty ? "\(opType) node producing '\(outputs.first ?? "?")'" : "\(opType) node '\(name)'"
    }
}

package enum ONNXAttribute {
    case float(Float)
    case int(Int64)
    case string(String)
    case floats([Float])
    case ints([Int64])
    case tensor(ONNXTensorRef)
    case other
}

package struct ONNXValueInfo {
    package var name: String
    package var elementType: Int32
    /// Dimensions; nil where symbolic or absent.
    package var dims: [Int?]
    /// The symbolic names (`dim_param`) of the dims that have one, nil elsewhere (may be empty).
    package var dimParams: [String?] = []
}

/// A TensorProto before its payload is decoded.
package struct ONNXTensorRef {
    package enum Payload {
        case raw(Data)
        case floats([Float])
        case int32s([Int32])
        case int64s([Int64])
        case doubles([Double])
        case external(location: String, offset: Int, length: Int?)
        case none
    }
    package var name: String
    package var dims: [Int64]
    package var dataType: Int32
    package var payload: Payload
}
