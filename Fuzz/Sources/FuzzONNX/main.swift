import DenseKit
import FuzzSupport

fuzz { _ = try? ONNXImporter.load(data: $0, path: "/nonexistent-fuzz-folder/model.onnx") }
