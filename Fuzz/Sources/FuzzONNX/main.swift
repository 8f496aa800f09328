import DenseKit
import DenseKitFormats
import Foundation
import FuzzSupport

// The model "lives" in a real folder holding the dynamo export's external data file, so inputs
// derived from that export resolve their tensors and reach the decoder, the recognizer and beyond.
let folder = FileManager.default.temporaryDirectory.appendingPathComponent("densekit-fuzz-onnx-\(getpid())")
try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
let dataName = "tv-tiny-dynamo-opset18.onnx.data"
try? FileManager.default.copyItem(
    at: fixtures.appendingPathComponent(dataName), to: folder.appendingPathComponent(dataName))
let modelPath = folder.appendingPathComponent("model.onnx").path

fuzz { bytes in
    guard let net = try? ONNXImporter.load(data: bytes, path: modelPath) else { return }
    exercise(net)
}
