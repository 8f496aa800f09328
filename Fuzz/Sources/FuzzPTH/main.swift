import DenseKit
import DenseKitFormats
import FuzzSupport

// Both torch.save formats: the zip (seeded with .pth files) and the legacy pickle stream.
fuzz { bytes in
    guard let net = try? PTHReader.load(data: bytes, path: "fuzz.pth") else { return }
    exercise(net)
}
