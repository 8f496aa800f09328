/// Why a model cannot run on a given input.
public enum ExecutionError: Error, CustomStringConvertible, Sendable {
    case inputShape(expected: String, found: [Int])
    case unsupported(String)

    public var description: String {
        switch self {
        case .inputShape(let expected, let found):
            return "input shape \(found) does not fit the model's input \(expected)"
        case .unsupported(let m):
            return m
        }
    }
}
