import DenseKit
import DenseKitFormats
import FuzzSupport

fuzz { bytes in
    guard let net = try? KerasImporter.load(data: bytes, path: "fuzz.h5") else { return }
    exercise(net)
}
