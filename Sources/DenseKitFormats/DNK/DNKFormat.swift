import DenseKitGraph

/// `.dnk`, told by its magic.
package struct DNKFormat: ModelFormat {
    package let name = "DenseKit .dnk"
    package func recognizes(_ file: ModelFile) -> Bool { file.kind == .dnk }
    package func read(_ file: ModelFile) throws -> DenseNet { try DNKReader.load(data: file.mapped(), path: file.path) }
}

extension ConversionTarget {
    public static let dnk = ConversionTarget(name: "dnk", fileExtension: ".dnk") { _ in DNKModelWriter() }
}
