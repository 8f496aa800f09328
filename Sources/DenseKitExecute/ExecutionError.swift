/// Why a model cannot run on a given input.
public enum ExecutionError: Error, CustomStringConvertible, Sendable {
    case inputShape(expected: String, found: [Int])
    /// A NaN or infinity in the input, at `index` of the input's shape.
    case nonFiniteInput(index: [Int], value: Float)
    case unsupported(String)

    public var description: String {
        switch self {
        case .inputShape(let expected, let found):
            return "input shape \(found) does not fit the model's input \(expected)"
        case .nonFiniteInput(let index, let value):
            return "input value \(value) at index \(index): the input must be finite (a NaN or an infinity "
                + "would make every output meaningless)"
        case .unsupported(let message):
            return message
        }
    }
}
