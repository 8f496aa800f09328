import DenseKitGraph

/// What `convert --json` prints: the file written and its validation, or why nothing was written.
public struct ConversionReport: Encodable, Sendable {
    public struct Change: Encodable, Sendable {
        public var change: String
        public var subject: String
        public var detail: String
    }

    public struct Validation: Encodable, Sendable {
        public var maxAbs: ReportNumber
        public var maxRel: ReportNumber
        public var cosine: ReportNumber
        public var top1Agreement: ReportNumber
        public var bitIdentical: Bool
        public var tolerance: ReportNumber
    }

    public var written: Bool
    public var format: String
    public var dtype: String
    /// A refused conversion's reason.
    public var reason: String?
    public var output: String?
    public var bytes: Int?
    public var architecture: Nullable<String>?
    public var closest: String?
    public var rawTensorBytes: Int?
    public var sizeRatio: ReportNumber?
    public var sourceSHA256: String?
    public var conventions: [Change]?
    public var validation: Validation?

    /// A file written to `output`.
    public init(_ outcome: Converter.Outcome, output: String) {
        written = true
        format = outcome.format
        dtype = outcome.dtype.rawValue
        self.output = output
        bytes = outcome.bytes
        architecture = Nullable(outcome.report.matches ? outcome.report.spec.name : nil)
        closest = outcome.report.spec.name
        rawTensorBytes = outcome.rawTensorBytes
        sizeRatio = ReportNumber(Double(outcome.bytes) / Double(outcome.rawTensorBytes))
        sourceSHA256 = outcome.sourceSHA256
        conventions = outcome.conventions.map {
            Change(change: $0.change.rawValue, subject: $0.subject, detail: $0.detail)
        }
        let measured = outcome.validation
        validation = Validation(
            maxAbs: ReportNumber(measured.maxAbs), maxRel: ReportNumber(measured.maxRel),
            cosine: ReportNumber(measured.cosine),
            top1Agreement: ReportNumber(measured.top1Agreement), bitIdentical: measured.bitIdentical,
            tolerance: ReportNumber(measured.tolerance))
    }

    /// Nothing written: `refusal` says why.
    public init(_ refusal: Converter.Refusal, format: String, dtype: DType) {
        written = false
        self.format = format
        self.dtype = dtype.rawValue
        reason = refusal.description
    }
}
