import DenseKit
import DenseKitFormats
import FuzzSupport

fuzz { bytes in
    guard let net = try? SafetensorsReader.load(data: bytes, path: "fuzz.safetensors") else { return }
    exercise(net)
}
