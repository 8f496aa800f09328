import DenseKit
import DenseKitGraph

/// The text `inspect` prints.
struct InspectText {
    let net: DenseNet

    var text: String {
        let source = net.source
        var lines: [String] = []
        let opset = source.opset.map { ", opset \($0)" } ?? ""
        lines.append("file        \(source.path)")
        lines.append("format      \(source.format.rawValue) (\(source.producer)\(opset))")
        lines.append(
            """
            input       '\(net.input.name)' \(net.input.shapeDescription) \
            \(net.input.layout.rawValue.uppercased()) float32
            """
        )
        if let transform = net.inputTransform {
            let origin = transform.origin.joined(separator: ", ")
            let codes = transform.quantized.map { " on the input's \($0.input.storage.rawValue) codes" } ?? ""
            lines.append("transform   \(transform.summary) per channel\(codes), before the stem (\(origin))")
        }
        lines.append("stem        " + net.stem.summary)
        lines.append("")
        lines.append("  block  layers  in -> out   growth  bottleneck  transition")
        for (b, block) in net.blocks.enumerated() {
            let growth = block.layers.first?.growth ?? 0
            let bottleneck = block.layers.first?.bottleneck.map { "1x1 -> \($0.conv.outChannels)" } ?? "none"
            var transition = "-"
            if b < net.transitions.count {
                let step = net.transitions[b]
                transition =
                    """
                    \(step.norm.channels) -> \(step.conv.outChannels), avg pool \
                    \(step.pool.kernel)x\(step.pool.kernel)/\(step.pool.stride)
                    """
            }
            lines.append(
                "  "
                    + [
                        pad("\(b + 1)", 5), pad("\(block.layers.count)", 6),
                        pad("\(block.inChannels) -> \(block.outChannels)", 11), pad("\(growth)", 6),
                        pad(bottleneck, 10), transition,
                    ].joined(separator: "  "))
        }
        lines.append("")
        let head = net.head
        lines.append("head        BN \(head.norm.channels), ReLU, \(head.summary)")
        lines.append(
            """
            weights     \(source.storedTensors) tensors, \(source.storedParameters) values, \
            \(source.storedBytes) bytes, dtypes \
            \(net.storedDTypes.joined(separator: ", "))
            """
        )
        for note in source.notes { lines.append("note        \(note)") }
        return lines.joined(separator: "\n")
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}
