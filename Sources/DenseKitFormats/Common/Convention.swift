/// Something a conversion's target adds, drops or changes relative to the source, told to the user
/// (torchvision outputs logits where the Keras source applied softmax; a state_dict stores no sigmoid).
public struct Convention: Sendable, Equatable, CustomStringConvertible {
    public enum Change: String, Sendable { case adds, drops, changes }

    public var change: Change
    /// What it is about: `activation`, `input layout`, `BatchNorm epsilon`, ...
    public var subject: String
    public var detail: String

    public init(_ change: Change, _ subject: String, _ detail: String) {
        self.change = change
        self.subject = subject
        self.detail = detail
    }

    public var description: String { "\(change.rawValue) \(subject): \(detail)" }
}

/// The target format cannot hold this model (exit 2: nothing is written).
public struct UnsupportedTarget: Error, CustomStringConvertible {
    /// The format (empty when none was chosen).
    public var format: String
    public var reason: String

    public init(_ format: String, _ reason: String) {
        self.format = format
        self.reason = reason
    }

    public var description: String { format.isEmpty ? reason : "cannot write \(format): \(reason)" }
}
