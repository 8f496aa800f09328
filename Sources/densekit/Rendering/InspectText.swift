import DenseKit
import DenseKitGraph

/// The text `inspect` prints.
struct InspectText {
    let net: DenseNet

    var text: String {
        let s = net.source
        var lines: [String] = []
        let opset = s.opset.map { ", opset \($0)" } ?? ""
        lines.append("file        \(s.path)")
        lines.append("format      \(s.format.rawValue) (\(s.producer)\(opset))")
        lines.append(
            """
            input       '\(net.input.name)' \(net.input.shapeDescription) \
            \(net.input.layout.rawValue.uppercased()) float32
            """
        )
        let stem = net.stem
        var stemParts = [
            """
            conv \(stem.conv.kernel)x\(stem.conv.kernel)/\(stem.conv.stride) \
            \(stem.conv.inChannels)->\(stem.outChannels)
            """
        ]
        if stem.norm != nil { stemParts.append("BN") } else if stem.normFolded { stemParts.append("BN (folded)") }
        if stem.relu { stemParts.append("ReLU") }
        if let p = stem.pool { stemParts.append("max pool \(p.kernel)x\(p.kernel)/\(p.stride)") }
        lines.append("stem        " + stemParts.joined(separator: ", "))
        lines.append("")
        lines.append("  block  layers  in -> out   growth  bottleneck  transition")
        for (b, block) in net.blocks.enumerated() {
            let k = block.layers.first?.growth ?? 0
            let bottleneck = block.layers.first?.bottleneck.map { "1x1 -> \($0.conv.outChannels)" } ?? "none"
            var transition = "-"
            if b < net.transitions.count {
                let t = net.transitions[b]
                transition =
                    """
                    \(t.norm.channels) -> \(t.conv.outChannels), avg pool \
                    \(t.pool.kernel)x\(t.pool.kernel)/\(t.pool.stride)
                    """
            }
            lines.append(
                "  "
                    + [
                        pad("\(b + 1)", 5), pad("\(block.layers.count)", 6),
                        pad("\(block.inChannels) -> \(block.outChannels)", 11), pad("\(k)", 6),
                        pad(bottleneck, 10), transition,
                    ].joined(separator: "  "))
        }
        lines.append("")
        let head = net.head
        lines.append("head        BN \(head.norm.channels), ReLU, \(head.summary)")
        lines.append(
            """
            weights     \(s.storedTensors) tensors, \(s.storedParameters) values, \(s.storedBytes) bytes, dtypes \
            \(net.storedDTypes.joined(separator: ", "))
            """
        )
        for note in s.notes { lines.append("note        \(note)") }
        return lines.joined(separator: "\n")
    }

    private func pad(_ s: String, _ width: Int) -> String {
        s.count >= width ? s : s + String(repeating: " ", count: width - s.count)
    }
}
