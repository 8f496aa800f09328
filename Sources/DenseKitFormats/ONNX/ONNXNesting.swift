import DenseKitGraph
import Foundation

/// A bounded scan of an ONNX file's protobuf wire format, before protobuf-c unpacks it: libprotobuf-c
/// recurses once per nested message, so a graph attribute nesting subgraphs thousands deep overflowed
/// the stack inside it. The only recursion in the schema DenseKit reads is GraphProto -> NodeProto ->
/// AttributeProto (`g`, `graphs`) -> GraphProto; this scan follows exactly those fields, skips every
/// other field by its length, and refuses subgraphs nested deeper than `maximumDepth` (a DenseNet has
/// none) or bytes that are not well-formed protobuf. Its own recursion is bounded by the same cap.
package enum ONNXNesting {
    /// Graphs inside graphs (control flow, If and Loop bodies); DenseNet graphs have none.
    package static let maximumDepth = 32

    /// Throws when the model nests subgraphs deeper than the cap, or is not well-formed protobuf.
    package static func check(_ data: Data) throws {
        try data.withUnsafeBytes { raw in
            var reader = WireReader(raw, start: 0, end: raw.count)
            while let field = try reader.next() {
                if field.number == 7, let graph = field.message { try checkGraph(raw, graph, depth: 1) }
            }
        }
    }

    private static func checkGraph(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>, depth: Int) throws {
        var reader = WireReader(raw, start: range.lowerBound, end: range.upperBound)
        while let field = try reader.next() {
            guard field.number == 1, let node = field.message else { continue }
            var nodeReader = WireReader(raw, start: node.lowerBound, end: node.upperBound)
            var name: Range<Int>?
            var attributes: [Range<Int>] = []
            while let nodeField = try nodeReader.next() {
                if nodeField.number == 3, let text = nodeField.message {
                    name = text
                } else if nodeField.number == 5, let attribute = nodeField.message {
                    attributes.append(attribute)
                }
            }
            for attribute in attributes {
                var attributeReader = WireReader(raw, start: attribute.lowerBound, end: attribute.upperBound)
                while let attributeField = try attributeReader.next() {
                    guard attributeField.number == 6 || attributeField.number == 11,
                        let subgraph = attributeField.message
                    else { continue }
                    guard depth < maximumDepth else {
                        throw ImportError.unsupported(
                            .node("node '\(text(raw, name))'"),
                            problem: "subgraphs nested deeper than \(maximumDepth) (a DenseNet has none)")
                    }
                    try checkGraph(raw, subgraph, depth: depth + 1)
                }
            }
        }
    }

    /// A node's name, decoded only for an error.
    private static func text(_ raw: UnsafeRawBufferPointer, _ range: Range<Int>?) -> String {
        range.map { String(decoding: UnsafeRawBufferPointer(rebasing: raw[$0]), as: UTF8.self) } ?? ""
    }

    /// One field of a message: its number, and for a length-delimited one the range of its bytes.
    private struct Field {
        var number: UInt64
        var message: Range<Int>?
    }

    /// Reads a message's fields in order, checking every length against the message's end.
    private struct WireReader {
        let raw: UnsafeRawBufferPointer
        var at: Int
        let end: Int

        init(_ raw: UnsafeRawBufferPointer, start: Int, end: Int) {
            self.raw = raw
            at = start
            self.end = end
        }

        private func malformed() -> ImportError {
            .malformed("not an ONNX model (protobuf parse failed: truncated or corrupt)")
        }

        private mutating func varint() throws -> UInt64 {
            var value: UInt64 = 0
            for shift in stride(from: 0, to: 70, by: 7) {
                guard at < end else { throw malformed() }
                let byte = raw[at]
                at += 1
                if shift == 63 && byte > 1 { throw malformed() }
                value |= UInt64(byte & 0x7F) << UInt64(shift)
                if byte & 0x80 == 0 { return value }
            }
            throw malformed()
        }

        private mutating func skip(_ count: UInt64) throws {
            guard count <= UInt64(end - at) else { throw malformed() }
            at += Int(count)
        }

        mutating func next() throws -> Field? {
            guard at < end else { return nil }
            let key = try varint()
            let number = key >> 3
            guard number > 0 else { throw malformed() }
            switch key & 7 {
            case 0: _ = try varint()
            case 1: try skip(8)
            case 2:
                let length = try varint()
                let start = at
                try skip(length)
                return Field(number: number, message: start..<at)
            case 5: try skip(4)
            default: throw malformed()  // groups (3, 4) and the undefined 6, 7: protobuf-c refuses them too
            }
            return Field(number: number, message: nil)
        }
    }
}
