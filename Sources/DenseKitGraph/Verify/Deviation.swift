/// One way a model differs from an architecture: `block3: layers expected 24, found 23`.
public struct Deviation: Sendable, Equatable, CustomStringConvertible {
    /// Canonical layer name (`stem`, `block2.layer5`, `transition1`, `head`), `model` for the whole net, or
    /// `all <n> dense layers` for a finding that holds in every dense layer alike.
    public var layer: String
    public var check: String
    public var expected: String
    public var found: String

    public init(layer: String, check: String, expected: String, found: String) {
        self.layer = layer
        self.check = check
        self.expected = expected
        self.found = found
    }

    public var description: String { "\(layer): \(check) expected \(expected), found \(found)" }
}
