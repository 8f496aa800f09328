/// Why a model file could not be turned into a validated canonical graph: what kind of failure, the
/// thing in the file it is about (`ImportSubject`), and either what was expected against what the file
/// holds or what is wrong. The file itself is not part of the error: the command-line tool knows the
/// path it read and renders `error: <file>: <description>` in one place.
///
/// `description` reads `block2.layer3.conv: expected stride 1 to 16, found 0` or
/// `tensor 'conv1.weight': dimension -3 out of range`.
public enum ImportError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file could not be opened or read.
    case unreadable(ImportSubject, problem: String)
    /// The bytes are not a well-formed file of the format (truncated, corrupt, wrong magic).
    case malformed(ImportSubject, problem: String)
    /// A well-formed file that uses something DenseKit does not support.
    case unsupported(ImportSubject, problem: String)
    /// A well-formed file whose graph is inconsistent or not a DenseNet.
    case structure(ImportSubject, problem: String)
    /// What a consistent file would hold at `subject`, and what this one holds.
    case mismatch(ImportSubject, expected: String, found: String)
    /// A file of no format DenseKit reads, with what it looks like (`a JPEG image`, `text`).
    case unrecognized(looksLike: String)

    /// What the error is about.
    public var subject: ImportSubject {
        switch self {
        case .unreadable(let subject, _), .malformed(let subject, _), .unsupported(let subject, _),
            .structure(let subject, _), .mismatch(let subject, _, _):
            return subject
        case .unrecognized:
            return .file
        }
    }

    /// What is wrong, without the subject: the problem, or `expected <expected>, found <found>`.
    public var message: String {
        switch self {
        case .unreadable(_, let problem), .malformed(_, let problem), .unsupported(_, let problem),
            .structure(_, let problem):
            return problem
        case .mismatch(_, let expected, let found):
            return "expected \(expected), found \(found)"
        case .unrecognized(let looksLike):
            return "not a model file DenseKit reads (looks like \(looksLike))"
        }
    }

    public var description: String { subject == .file ? message : "\(subject): \(message)" }

    // The file as a whole is the subject of most of a reader's refusals.
    public static func unreadable(_ problem: String) -> ImportError { .unreadable(.file, problem: problem) }
    public static func malformed(_ problem: String) -> ImportError { .malformed(.file, problem: problem) }
    public static func unsupported(_ problem: String) -> ImportError { .unsupported(.file, problem: problem) }
    public static func structure(_ problem: String) -> ImportError { .structure(.file, problem: problem) }
}

/// The thing in a model file an `ImportError` is about.
public enum ImportSubject: Sendable, Equatable, CustomStringConvertible {
    /// The file as a whole.
    case file
    /// A canonical layer, or one of its parts (`conv`, `norm`, `bottleneck.conv`, `pool`).
    case layer(CanonicalLayer, part: String? = nil)
    /// A stored tensor, by the file's name for it.
    case tensor(String)
    /// A graph input or output, by name.
    case input(String)
    case output(String)
    /// An ONNX node, by its label (`Conv node 'name'`).
    case node(String)
    /// A layer of a Keras model, by name, with its class where the message needs it.
    case kerasLayer(String, className: String? = nil)
    /// A weight of a node or layer: its role there (`weight`, `bias`, `kernel`) and its name in the file.
    indirect case weight(of: ImportSubject, role: String, name: String)
    /// An entry of a container: a zip entry, an HDF5 dataset or group, a pickled storage.
    case entry(kind: String, name: String)
    /// A state_dict key.
    case key(String)
    /// A byte offset in the file.
    case byte(Int)
    /// A byte offset in a pickle (inside a zip entry for torch's zip format).
    case pickle(byte: Int)
    /// A named part of the file that is none of the above (`header`, `the model config`, `graph inputs`).
    case part(String)

    public var description: String {
        switch self {
        case .file: return "file"
        case .layer(let layer, let part): return part.map { "\(layer).\($0)" } ?? layer.name
        case .tensor(let name): return "tensor '\(name)'"
        case .input(let name): return "input '\(name)'"
        case .output(let name): return "output '\(name)'"
        case .node(let label): return label
        case .kerasLayer(let name, let className): return "layer '\(name)'" + (className.map { " (\($0))" } ?? "")
        case .weight(let owner, let role, let name): return "\(owner): \(role) '\(name)'"
        case .entry(let kind, let name): return "\(kind) '\(name)'"
        case .key(let name): return "state_dict key '\(name)'"
        case .byte(let offset): return "byte \(offset)"
        case .pickle(let offset): return "pickle at byte \(offset)"
        case .part(let name): return name
        }
    }
}
