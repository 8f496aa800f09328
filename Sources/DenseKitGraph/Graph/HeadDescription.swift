import Foundation

/// What a head is beyond its weights: the global pool and each dense layer's activation.
///
/// Formats that store only weights (a state_dict, a Keras weights file) cannot say it; DenseKit's
/// writers record it beside the weights as this JSON object, `{"pool": "average"|"max"|null,
/// "activations": ["relu", "sigmoid", ...]}` (the `.dnk` structure's `head` too), and DenseKit's
/// readers use it when it is there, so a file DenseKit wrote reads back as the model it came from.
public struct HeadDescription: Sendable, Equatable, Codable {
    public var pool: Head.Pool?
    public var activations: [Head.Activation]

    public init(pool: Head.Pool?, activations: [Head.Activation]) {
        self.pool = pool
        self.activations = activations
    }

    public init(_ head: Head) {
        self.init(pool: head.pool, activations: head.dense.map(\.activation))
    }

    public var jsonObject: [String: Any] {
        ["pool": pool?.rawValue ?? NSNull(), "activations": activations.map(\.rawValue)]
    }

    public var jsonString: String {
        let data = (try? JSONSerialization.data(withJSONObject: jsonObject, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// Parses the JSON object; `subject` names where it came from in the error.
    public init(jsonObject object: Any, subject: ImportSubject) throws {
        func fail(_ found: String) -> ImportError {
            ImportError.mismatch(
                subject,
                expected: "a head description {\"pool\": \"average\", \"max\" or null, \"activations\": [...]}",
                found: found)
        }
        guard let description = object as? [String: Any], let names = description["activations"] as? [String] else {
            throw fail("\(type(of: object))")
        }
        guard names.count <= 64 else { throw fail("\(names.count) activations") }
        activations = try names.map { name in try Head.Activation(rawValue: name).orThrow(fail("activation '\(name)'"))
        }
        switch description["pool"] {
        case let p as String: pool = try Head.Pool(rawValue: p).orThrow(fail("pool '\(p)'"))
        case is NSNull: pool = nil
        default: throw fail("no pool")
        }
        if pool == nil && !activations.isEmpty { throw fail("dense layers without a global pool") }
    }

    private enum CodingKeys: String, CodingKey { case pool, activations }

    /// Decodes and checks the object as `init(jsonObject:subject:)` does, `subject` being the key path.
    public init(from decoder: Decoder) throws {
        let subject = ImportSubject.part(decoder.codingPath.map(\.stringValue).joined(separator: "."))
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let pool = try container.decodeIfPresent(String.self, forKey: .pool)
        let activations = try container.decode([String].self, forKey: .activations)
        try self.init(jsonObject: ["pool": pool as Any? ?? NSNull(), "activations": activations], subject: subject)
    }

    /// `pool` is written as null when there is none.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(pool, forKey: .pool)
        try container.encode(activations, forKey: .activations)
    }

    public init(jsonString: String, subject: ImportSubject) throws {
        guard let object = try? JSONSerialization.jsonObject(with: Data(jsonString.utf8)) else {
            throw ImportError.mismatch(
                subject, expected: "a head description in JSON", found: "'\(jsonString.prefix(40))'")
        }
        try self.init(jsonObject: object, subject: subject)
    }

    /// The head from its final BN and the dense layers' linear maps, which must be one per activation.
    public func head(norm: BatchNorm, linears: [Linear], subject: ImportSubject) throws -> Head {
        guard linears.count == activations.count else {
            throw ImportError.mismatch(
                subject,
                expected:
                    """
                    \(activations.count) dense layer\(activations.count == 1 ? "" : "s") (as its head description \
                    says)
                    """,
                found: "\(linears.count)")
        }
        return Head(norm: norm, pool: pool, dense: zip(linears, activations).map { Head.Dense($0, $1) })
    }
}

extension Optional {
    /// The value, or `error` thrown.
    package func orThrow(_ error: @autoclosure () -> Error) throws -> Wrapped {
        guard let value = self else { throw error() }
        return value
    }
}
