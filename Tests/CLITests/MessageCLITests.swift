import Foundation
import TestSupport
import Testing

/// Messages (#42.13): a compressed `.pth` is explained as what it is, and a lying safetensors file is
/// explained the same way on every run, whatever the order of a dictionary in that process.
@Suite struct MessageCLITests {
    /// torchvision's tiny `.pth`, its members recompressed with deflate by Python's zipfile.
    @Test func aCompressedCheckpointIsNamedAsSuch() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let output = folder.appendingPathComponent("deflated.pth").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "\(Frameworks.cache)/venv-torch/bin/python")
        process.arguments = [
            "-c",
            """
            import sys, zipfile
            with zipfile.ZipFile(sys.argv[1]) as a, zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED) as b:
                for info in a.infolist():
                    b.writestr(info.filename, a.read(info.filename))
            """,
            Fixtures.path("tv-tiny.pth"), output,
        ]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let outcome = try densekit(["inspect", output])
        #expect(outcome.status == 2)
        #expect(
            outcome.stderr.hasPrefix("error: \(output): zip entry '")
                && outcome.stderr.hasSuffix(
                    "' is compressed (method 8, deflate); DenseKit reads stored members, as torch.save and Keras "
                        + "write them\n"),
            "\(outcome.stderr)")
    }

    /// Two tensors claiming the same bytes: the same tensor is named in every process.
    @Test func anOverlapIsNamedTheSameWayEveryRun() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let lying = try SafetensorsEditing.withHeader(try Fixtures.data("tv-tiny.safetensors")) { header in
            let names = header.keys.filter { $0 != "__metadata__" }.sorted()
            let first = header[names[0]] as! [String: Any]
            var second = header[names[1]] as! [String: Any]
            second["data_offsets"] = first["data_offsets"]
            second["shape"] = first["shape"]
            second["dtype"] = first["dtype"]
            header[names[1]] = second
        }
        let path = try Fixtures.write(lying, as: "lying.safetensors", in: folder)
        let messages = try (0..<6).map { _ in try densekit(["inspect", path]) }
        #expect(messages.allSatisfy { $0.status == 2 })
        #expect(Set(messages.map(\.stderr)).count == 1, "\(Set(messages.map(\.stderr)))")
        #expect(messages[0].stderr.contains("regions contiguous, not overlapping"), "\(messages[0].stderr)")
    }
}
