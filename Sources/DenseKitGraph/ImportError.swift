/// Why a model file could not be turned into a validated canonical graph. The CLI prefixes the file name.
///
/// The context is kept as fields: what the error is about (a layer, node or tensor), and either what
/// was expected against what the file holds, or what is wrong. `description` reads
/// `block2.layer3.conv: expected stride 1 to 16, found 0` or `tensor 'conv1.weight': dimension -3 out of range`.
public struct ImportError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// The file could not be opened or read.
        case unreadable
        /// The bytes are not a well-formed file of the format (truncated, corrupt, wrong magic).
        case malformed
        /// A well-formed file that uses something DenseKit does not support.
        case unsupported
        /// A well-formed file whose graph is inconsistent or not a DenseNet.
        case structure
    }

    public var kind: Kind
    /// The file, once `ModelLoader` knows it (an importer reading bytes does not). Not part of
    /// `description`: the command-line tool prints it first, as `error: <file>: <description>`.
    public var file: String?
    /// The layer, node or tensor the error is about (`block2.layer3.conv`, `tensor 'conv1.weight'`), or
    /// nil when it concerns the file as a whole.
    public var subject: String?
    /// What a consistent file would hold there, and what this one holds (both set, or neither).
    public var expected: String?
    public var found: String?
    /// What is wrong, when the error is not a mismatch of expected and found.
    public var problem: String?

    public init(
        _ kind: Kind, subject: String? = nil, expected: String? = nil, found: String? = nil, problem: String? = nil
    ) {
        self.kind = kind
        self.subject = subject
        self.expected = expected
        self.found = found
        self.problem = problem
    }

    /// A mismatch: `subject: expected <expected>, found <found>`.
    public static func mismatch(_ subject: String, expected: String, found: String, kind: Kind = .structure)
        -> ImportError
    {
        ImportError(kind, subject: subject, expected: expected, found: found)
    }

    public static func unreadable(_ problem: String) -> ImportError { ImportError(.unreadable, problem: problem) }
    public static func malformed(_ problem: String) -> ImportError { ImportError(.malformed, problem: problem) }
    public static func unsupported(_ problem: String) -> ImportError { ImportError(.unsupported, problem: problem) }
    public static func structure(_ problem: String) -> ImportError { ImportError(.structure, problem: problem) }

    public var description: String {
        var parts: [String] = []
        if let subject { parts.append(subject) }
        if let expected, let found { parts.append("expected \(expected), found \(found)") }
        if let problem { parts.append(problem) }
        return parts.isEmpty ? kind.rawValue : parts.joined(separator: ": ")
    }
}
