/// A canonical layer of a DenseNet, the unit every command names whatever format the model came from:
/// `stem`, `block<b>.layer<i>` (1-based), `transition<t>`, `head.dense<i>` (a head's dense layers
/// before the last) and `head` (the head's output). The one place these names are made and parsed.
public enum CanonicalLayer: Hashable, Sendable, CustomStringConvertible {
    case stem
    /// A dense block as a whole (named in messages and the verifier's findings; not a layer of the walk).
    case block(Int)
    case denseLayer(block: Int, layer: Int)
    case transition(Int)
    /// A dense layer of the head before its last one (the last is `head`).
    case headDense(Int)
    case head

    public var name: String {
        switch self {
        case .stem: return "stem"
        case .block(let block): return "block\(block)"
        case .denseLayer(let block, let layer): return "block\(block).layer\(layer)"
        case .transition(let index): return "transition\(index)"
        case .headDense(let index): return "head.dense\(index)"
        case .head: return "head"
        }
    }

    public var description: String { name }

    /// The layer a name gives (the inverse of `name`): nil for anything else, a zero or negative
    /// index, or digits with a leading zero (so every layer has exactly one name).
    public init?(name: String) {
        func index(_ text: Substring) -> Int? {
            guard let first = text.first, first != "0", text.allSatisfy(\.isASCII), let value = Int(text),
                value > 0
            else { return nil }
            return value
        }
        switch name {
        case "stem": self = .stem
        case "head": self = .head
        default:
            if name.hasPrefix("transition"), let transition = index(name.dropFirst("transition".count)) {
                self = .transition(transition)
            } else if name.hasPrefix("head.dense"), let position = index(name.dropFirst("head.dense".count)) {
                self = .headDense(position)
            } else if name.hasPrefix("block"), !name.contains("."), let block = index(name.dropFirst("block".count)) {
                self = .block(block)
            } else if name.hasPrefix("block"), let dot = name.firstIndex(of: "."),
                let block = index(name[name.index(name.startIndex, offsetBy: 5)..<dot]),
                name[dot...].hasPrefix(".layer"),
                let position = index(name[name.index(dot, offsetBy: 6)...])
            {
                self = .denseLayer(block: block, layer: position)
            } else {
                return nil
            }
        }
    }
}

extension Head {
    /// The head's layers in execution order: `head.dense<i>` for each dense layer but the last, then `head`.
    public var canonicalLayers: [CanonicalLayer] {
        (dense.count <= 1 ? [] : (1..<dense.count).map { CanonicalLayer.headDense($0) }) + [.head]
    }
}
