import DenseKit
import DenseKitFormats
import FuzzSupport

fuzz { bytes in
    guard let net = try? TFLiteImporter.load(data: bytes, path: "fuzz.tflite") else { return }
    exercise(net)
}
