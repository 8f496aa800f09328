import DenseKitGraph

/// ONNX: a protobuf, which has no magic number; tried for any file no other format claims.
package struct ONNXFormat: ModelFormat {
    package let name = "ONNX"
    package func recognizes(_ file: ModelFile) -> Bool { file.kind == .protobufCandidate }
    package func read(_ file: ModelFile) throws -> DenseNet {
        try ONNXImporter.load(reading: file.readContents, path: file.path)
    }
}

extension ConversionTarget {
    public static let onnx = ConversionTarget(name: "onnx", fileExtension: ".onnx") { options in
        ONNXModelWriter(opset: options.opset, foldBatchNorm: options.foldBatchNorm)
    }
}
