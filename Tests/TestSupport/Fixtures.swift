import DenseKit
import DenseKitFormats
import DenseKitGraph
import Foundation

/// Paths to the committed tiny fixtures and, when `make fixtures-full` has run, the full-size ones.
public enum Fixtures {
    /// The package root (three levels above this file).
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A fixture's path (an absolute path, such as a file a test wrote, is kept as it is).
    public static func path(_ name: String) -> String {
        name.hasPrefix("/") ? name : root.appendingPathComponent("fixtures/\(name)").path
    }

    /// `fixtures/full` when `make fixtures-full` completed there; nil otherwise, and the full-size
    /// tests are then skipped (saying so), except under CI (`CI=true`, as `.ci/run` runs): there it
    /// is always the folder, so that a fixture that was not built fails its tests instead.
    public static var full: String? {
        let folder = root.appendingPathComponent("fixtures/full")
        let built = FileManager.default.fileExists(atPath: folder.appendingPathComponent(".stamp").path)
        return built || isCI ? folder.path : nil
    }

    /// Whether the tests run under CI (`CI=true`), where nothing may be skipped.
    public static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    public static func npy(_ path: String) throws -> NPY.Array { try NPY.read(path: path) }

    /// A committed fixture's bytes.
    public static func data(_ name: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path(name))) }

    /// Writes `bytes` as `name` in a fresh folder (with `extra` files beside it), loads it with the
    /// model loader and removes the folder.
    public static func loadWritten(_ bytes: Data, as name: String, extra: [String: Data] = [:]) throws -> DenseNet {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        for (count, d) in extra { try d.write(to: folder.appendingPathComponent(count)) }
        let path = folder.appendingPathComponent(name).path
        try bytes.write(to: URL(fileURLWithPath: path))
        return try ModelLoader.load(path: path)
    }

    /// The `.meta.json` that the fixture script wrote beside a model (counts and samples read by the
    /// framework that made it).
    public static func meta(_ path: String) throws -> FixtureMeta {
        try JSONDecoder().decode(FixtureMeta.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Writes `data` as `name` in `folder`; returns its path.
    public static func write(_ data: Data, as name: String, in folder: URL) throws -> String {
        let path = folder.appendingPathComponent(name).path
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A temporary folder removed by the caller.
    public static func temporaryFolder() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("densekit-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

public struct FixtureMeta: Decodable {
    public struct Sample: Decodable {
        public var shape: [Int]
        public var first: [Double]
        public var sum: Double
    }
    public var trainable: Int
    public var withBatchNormStatistics: Int
    public var samples: [String: Sample]
}

/// max |a - b| / max |b|: the error measure the accuracy requirement is stated in; infinite where
/// `a` holds a value that is not finite (which `max` would pass over: NaN compares false).
public func relativeError(_ values: [Float], _ reference: [Float]) -> Float {
    precondition(values.count == reference.count, "sizes differ: \(values.count) vs \(reference.count)")
    var worst: Float = 0
    var scale: Float = 0
    for (x, r) in zip(values, reference) {
        guard x.isFinite || !r.isFinite else { return .infinity }
        worst = max(worst, abs(x - r))
        scale = max(scale, abs(r))
    }
    return scale > 0 ? worst / scale : worst
}

/// A deterministic generator for test data (SplitMix64).
public struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    public init(_ seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
    public mutating func floats(_ count: Int, _ range: ClosedRange<Float> = -1...1) -> [Float] {
        (0..<count).map { _ in Float.random(in: range, using: &self) }
    }
}
