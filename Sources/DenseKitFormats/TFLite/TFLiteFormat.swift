import DenseKitGraph
import Foundation

/// TensorFlow Lite: told by its FlatBuffer identifier "TFL3".
package struct TFLiteFormat: ModelFormat {
    package let name = "TensorFlow Lite"
    package func recognizes(_ file: ModelFile) -> Bool { file.kind == .tflite }
    package func read(_ file: ModelFile) throws -> DenseNet {
        try TFLiteImporter.load(data: file.readContents(), path: file.path)
    }
}

extension ConversionTarget {
    public static let tflite = ConversionTarget(name: "tflite", fileExtension: ".tflite") { _ in TFLiteModelWriter() }
}
