import Foundation

/// Writes DenseKit's native `.dnk` (schemas/dnk-format.md): the canonical tensors, the structure
/// with the verifier's summary of it, and the provenance.
public struct DNKModelWriter: ModelWriter {
    public let format = "dnk"
    /// Whether a float32 file also stores the executor's prepared buffers (`ExecutorCache`), so that
    /// running it needs no packing or transforms. Files of other dtypes never do (their weights are
    /// rounded when read, the cache would not be made from them).
    public var executorCache: Bool

    public init(executorCache: Bool = true) { self.executorCache = executorCache }

    public func encode(_ net: DenseNet, dtype: DType, provenance: Provenance) throws -> Data {
        var meta = try metadata(net, dtype: dtype, provenance: provenance)
        var extra: [(String, Tensor)] = []
        // A graph the executor refuses gets no cache (the lying files the tests write).
        // A buffer whose tensor name would not fit the table is left out (the executor makes it).
        if executorCache && dtype == .f32, let buffers = try? ExecutorCache.encode(net) {
            for (name, values) in buffers {
                let tensorName = ExecutorCache.tensorPrefix + name
                guard tensorName.utf8.count < DNKWriter.nameSize else { continue }
                extra.append((tensorName, Tensor(name: tensorName, shape: [1, values.count], values: values)))
            }
            meta["executorCache"] = ["format": ExecutorCache.format, "mode": ConvolutionMode.default.rawValue]
        }
        return try DNKWriter.encode(net, dtype: dtype, metadata: meta, extra: extra)
    }

    /// The metadata JSON object (its keys are pinned to the spec by the tests).
    func metadata(_ net: DenseNet, dtype: DType, provenance p: Provenance) throws -> [String: Any] {
        let report = try Verifier().verify(net)
        let version = DNKWriter.version(for: net)
        return [
            "format": "densekit-native", "version": "\(version.major).\(version.minor)",
            "structure": CanonicalLayout.structure(of: net).merging([
                "architecture": report.matches ? report.spec.name : NSNull(), "closest": report.spec.name,
                "growthRate": report.growthRate, "compression": report.compression ?? NSNull(), "bottleneck": report.bottleneck,
            ]) { a, _ in a },
            "provenance": [
                "sourceFile": p.sourceFile, "sourceSHA256": p.sourceSHA256, "sourceFormat": p.sourceFormat,
                "producer": p.producer, "densekitVersion": p.densekitVersion, "convertedAt": p.convertedAt,
                "dtype": dtype.rawValue,
            ] as [String: Any],
        ]
    }
}
