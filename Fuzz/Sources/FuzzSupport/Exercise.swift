import DenseKit
import DenseKitExecute
import DenseKitGraph
import Foundation

/// What every target does with a graph its reader accepted: the same steps a command takes after
/// import. Validation, then the verifier, the executor's plan and one run on a small image, so that
/// a graph that slips past a check reaches the unchecked kernels here, under AddressSanitizer.
public func exercise(_ net: DenseNet) {
    guard (try? net.validate()) != nil else { return }
    _ = try? Verifier().verify(net)
    // A fuzzed graph may be legitimately huge (2^16 channels); running one is a time-out, not a finding.
    let values = net.tensors.reduce(0) { $0 + $1.count }
    guard values <= 4_000_000 else { return }
    let side = min(net.input.height ?? 32, 48)
    let width = min(net.input.width ?? 32, 48)
    let image = (0..<(net.stem.conv.inChannels * side * width)).map { Float($0 % 17) / 8 - 1 }
    guard let executor = try? Executor(net, threads: 1) else { return }
    _ = try? executor.run(image, batch: 1, height: side, width: width)
}

/// The committed fixtures folder (`fixtures/` of the DenseKit package this one sits in).
public let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("fixtures")
