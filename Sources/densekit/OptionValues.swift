import ArgumentParser
import DenseKitFormats
import DenseKitGraph
import DenseKitImages

// The option values that name one of DenseKit's own choices are parsed into its types: a wrong value
// is refused by the parser (exit 2, naming the flag and every choice) before any file is read, and
// `--help` lists the choices from the types themselves.

extension InputSpec.Layout: ExpressibleByArgument {}

extension DType: ExpressibleByArgument {}

extension Preprocessing.Preset: ExpressibleByArgument {}

extension ImageResize.Filter: ExpressibleByArgument {}

extension ConversionTarget: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { all.map(\.name) }
}

extension ArchitectureSpec: ExpressibleByArgument {
    public init?(argument: String) {
        guard let spec = Self.named(argument) else { return nil }
        self = spec
    }
    public static var allValueStrings: [String] { all.map(\.name) }
}
