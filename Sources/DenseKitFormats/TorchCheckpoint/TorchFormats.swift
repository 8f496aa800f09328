import DenseKitGraph

/// torch.save's zip format (`<name>/data.pkl` and its storages).
package struct TorchZipFormat: ModelFormat {
    package let name = "PyTorch (zip)"

    package func recognizes(_ file: ModelFile) -> Bool {
        guard file.kind == .zip, let zip = try? file.zip() else { return false }
        return FileKind.isTorchArchive(zip)
    }

    package func read(_ file: ModelFile) throws -> DenseNet { try PTHReader.load(data: file.data(), path: file.path) }
}

/// torch.save's legacy format: pickles in a row, the first its magic number.
package struct TorchLegacyFormat: ModelFormat {
    package let name = "PyTorch (legacy)"
    package func recognizes(_ file: ModelFile) -> Bool { file.kind == .legacyTorch }
    package func read(_ file: ModelFile) throws -> DenseNet {
        try PTHReader.load(data: file.readContents(), path: file.path)
    }
}

/// safetensors: a u64 header length, then the JSON header.
package struct SafetensorsFormat: ModelFormat {
    package let name = "safetensors"
    package func recognizes(_ file: ModelFile) -> Bool { file.kind == .safetensors }
    package func read(_ file: ModelFile) throws -> DenseNet {
        try SafetensorsReader.load(data: file.readContents(), path: file.path)
    }
}

extension ConversionTarget {
    /// safetensors with torchvision's key names.
    public static let safetensors = ConversionTarget(name: "safetensors", fileExtension: ".safetensors") { _ in
        SafetensorsModelWriter()
    }
}
