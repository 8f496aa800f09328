/// Why a model file could not be turned into a canonical graph. The CLI prefixes the file name.
public enum ImportError: Error, CustomStringConvertible, Sendable {
    /// The file could not be opened or read.
    case unreadable(String)
    /// The bytes are not a well-formed file of the format (truncated, corrupt, wrong magic).
    case malformed(String)
    /// A well-formed file that uses something DenseKit does not support.
    case unsupported(String)
    /// A well-formed file whose graph is inconsistent or not a DenseNet; the message names the node or layer.
    case structure(String)

    public var description: String {
        switch self {
        case .unreadable(let m), .malformed(let m), .unsupported(let m), .structure(let m): return m
        }
    }
}
