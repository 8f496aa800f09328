import Foundation
import TestSupport
import Testing

/// Sizes and files that would make DenseKit allocate without bound or wait forever (#42.4, 5, 13): a
/// resize whose output passes Pillow's pixel limit, a `--resize` beyond the largest input side, an
/// input array that is a FIFO, a negative `--threads`.
@Suite struct HostileInputCLITests {
    let tiny = Fixtures.path("tv-tiny.pth")

    /// `bytes` as a zlib stream of stored (uncompressed) deflate blocks.
    func storedZlib(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]
        var at = 0
        repeat {
            let count = min(65535, bytes.count - at)
            let final: UInt8 = at + count == bytes.count ? 1 : 0
            out += [final, UInt8(count & 0xFF), UInt8(count >> 8), UInt8(~count & 0xFF), UInt8((~count >> 8) & 0xFF)]
            out += bytes[at..<(at + count)]
            at += count
        } while at < bytes.count
        var (low, high): (UInt32, UInt32) = (1, 0)
        for byte in bytes {
            low = (low + UInt32(byte)) % 65521
            high = (high + low) % 65521
        }
        return out + withUnsafeBytes(of: (high << 16 | low).bigEndian, Array.init)
    }

    /// A valid 65535x1 RGB PNG, made here.
    func widePNG() -> Data {
        func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] { pngChunk(Array(type.utf8), body) }
        let width = 65535
        let header = withUnsafeBytes(of: UInt32(width).bigEndian, Array.init) + [0, 0, 0, 1, 8, 2, 0, 0, 0]
        let row = [UInt8(0)] + [UInt8](repeating: 0x80, count: width * 3)
        let compressed = storedZlib(row)
        return Data(
            [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", header) + chunk("IDAT", compressed)
                + chunk("IEND", []))
    }

    @Test func aResizePastThePixelLimitIsRefusedBeforeItIsMade() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let png = try Fixtures.write(widePNG(), as: "wide.png", in: folder)
        let start = Date()
        let outcome = try densekit(
            ["run", tiny, "--images", png, "--preset", "torchvision", "--size", "64"], killAfter: 30)
        #expect(Date().timeIntervalSince(start) < 10)
        #expect(outcome.status == 2)
        #expect(
            outcome.stderr
                == "error: \(png): resizing 65535x1 to 4784055x73 would make more than the 89478485-pixel limit "
                + "(Pillow's decompression-bomb limit)\n")
        let huge = try densekit(["run", tiny, "--images", png, "--preset", "torchvision", "--resize", "100000x100000"])
        #expect(huge.status == 2)
        #expect(huge.stderr == "error: --resize takes N, WxH (each from 1 to 16384) or none, not '100000x100000'.\n")
    }

    @Test func anInputThatIsAFIFOIsRefused() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("x.npy").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let outcome = try densekit(["run", tiny, "--input", fifo, "--output", "y.npy"], killAfter: 30)
        #expect(
            outcome.status == 2 && outcome.stderr == "error: \(fifo): is a FIFO, not a regular file\n",
            "\(outcome.stderr)")
    }

    /// An image or a labels file that is a FIFO is refused, never waited on.
    @Test func anImageOrLabelsFileThatIsAFIFOIsRefused() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let image = folder.appendingPathComponent("x.png").path
        #expect(mkfifo(image, 0o600) == 0)
        let outcome = try densekit(["preprocess", image, "-o", "y.npy", "--preset", "torchvision"], killAfter: 30)
        #expect(
            outcome.status == 2 && outcome.stderr == "error: \(image): is a FIFO, not a regular file\n",
            "\(outcome.stderr)")
        let labels = folder.appendingPathComponent("labels.txt").path
        #expect(mkfifo(labels, 0o600) == 0)
        let photo = try ImageFixtures.photos() + "/astronaut.png"
        let run = try densekit(
            ["run", tiny, "--images", photo, "--preset", "torchvision", "--size", "64", "--labels", labels],
            killAfter: 30)
        #expect(run.status == 2 && run.stderr == "error: \(labels): is a FIFO, not a regular file\n", "\(run.stderr)")
    }

    /// A sparse 5 GiB model or input array (no disk used) is refused from its size, before anything is
    /// allocated for it.
    @Test func filesPastTheSizeLimitAreRefusedBeforeTheyAreRead() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let size: UInt64 = 5 << 30
        var paths: [String] = []
        for name in ["huge.onnx", "huge.npy"] {
            let path = folder.appendingPathComponent(name).path
            #expect(FileManager.default.createFile(atPath: path, contents: Data("\u{93}NUMPY".utf8)))
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.truncate(atOffset: size)
            try handle.close()
            paths.append(path)
        }
        let expected = "is \(size) bytes, more than the \(4 << 30)-byte limit\n"
        let inspect = try densekit(["inspect", paths[0]], killAfter: 30)
        #expect(inspect.status == 2 && inspect.stderr == "error: \(paths[0]): " + expected, "\(inspect.stderr)")
        let run = try densekit(["run", tiny, "--input", paths[1], "--output", "y.npy"], killAfter: 30)
        #expect(run.status == 2 && run.stderr == "error: \(paths[1]): " + expected, "\(run.stderr)")
    }

    @Test func aNegativeThreadCountIsNamed() throws {
        let input = Fixtures.path("input-64.npy")
        let outcome = try densekit(["run", tiny, "--input", input, "--output", "/tmp/never.npy", "--threads", "-1"])
        #expect(
            outcome.status == 2 && outcome.stderr == "error: --threads must be between 1 and 256, not -1.\n",
            "\(outcome.stderr)")
    }
}
