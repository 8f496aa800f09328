/// Why an output file was not written (nothing is left behind). The output's path is not part of the
/// error: the command line names it first, as `error: <output>: <description>`.
public enum WriteError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The output's name cannot take a new file: it exists and is not a regular file, or it is the source.
    case destination(problem: String)
    /// The system refused a step (creating the temporary file, writing it, renaming it into place).
    case system(step: String, reason: String)
    /// Another process replaced the temporary file between its writing and its renaming.
    case temporaryReplaced(String)
    /// The model does not fit the target format (protobuf's 2 GiB, the `.dnk` table's name field).
    case doesNotFit(format: String, problem: String)

    public var description: String {
        switch self {
        case .destination(let problem): return problem
        case .system(let step, let reason): return "\(step): \(reason)"
        case .temporaryReplaced(let temporary):
            return "the temporary file '\(temporary)' was replaced by another process; nothing written"
        case .doesNotFit(_, let problem): return problem
        }
    }
}
