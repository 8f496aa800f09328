import Foundation

/// A number in a JSON report: JSON has no NaN or infinity, so a non-finite value (the metric of a model
/// that computes NaN, say) is written as `null`.
public struct ReportNumber: Encodable, Sendable, Equatable {
    public var value: Double

    public init(_ value: Double) { self.value = value }
    public init(_ value: Float) { self.value = Double(value) }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        if value.isFinite { try container.encode(value) } else { try container.encodeNil() }
    }
}

/// A value whose key a report always writes: `null` when there is none (Swift's synthesised encoding
/// would leave the key out, where the contract shows it).
public struct Nullable<Wrapped: Encodable & Sendable>: Encodable, Sendable {
    public var value: Wrapped?

    public init(_ value: Wrapped?) { self.value = value }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value { try container.encode(value) } else { try container.encodeNil() }
    }
}

/// A file a command could not read, and why (`--skip-bad`).
public struct SkippedFile: Encodable, Sendable {
    public var file: String
    public var error: String

    public init(file: String, error: String) {
        self.file = file
        self.error = error
    }
}
