import DenseKitGraph

/// Keras `.h5` and `.weights.h5`: an HDF5 file.
package struct KerasHDF5Format: ModelFormat {
    package let name = "Keras HDF5"
    package var readsThroughHDF5: Bool { true }
    package func recognizes(_ file: ModelFile) -> Bool { file.kind == .hdf5 }
    package func read(_ file: ModelFile) throws -> DenseNet {
        try KerasImporter.load(data: file.readContents(), path: file.path, inMemory: true)
    }
}

/// Keras 3 `.keras`: a zip archive holding `config.json` and `model.weights.h5`.
package struct KerasZipFormat: ModelFormat {
    package let name = "Keras .keras"
    package var readsThroughHDF5: Bool { true }

    package func recognizes(_ file: ModelFile) -> Bool {
        guard file.kind == .zip, let zip = try? file.zip() else { return false }
        return FileKind.zipContents(zip) == nil && !FileKind.isTorchArchive(zip)
    }

    package func read(_ file: ModelFile) throws -> DenseNet {
        try KerasImporter.load(data: file.data(), path: file.path, inMemory: false)
    }
}

extension ConversionTarget {
    /// A Keras 2 (tf_keras) weights `.h5`, the layout of the published pretrained files.
    public static let kerasH5 = ConversionTarget(name: "keras-h5", fileExtension: ".h5") { _ in
        KerasModelWriter(layout: .keras2Weights)
    }
    /// A Keras 3 `.weights.h5`.
    public static let kerasWeightsH5 = ConversionTarget(name: "keras-weights-h5", fileExtension: ".weights.h5") { _ in
        KerasModelWriter(layout: .keras3Weights)
    }
}
