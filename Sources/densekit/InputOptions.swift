import ArgumentParser

/// What a command runs a model on: an array (`--input X.npy`) or images (`--images ... --preset P`),
/// checked before any model is read.
struct InputOptions: ParsableArguments {
    @Option(help: "Input array (.npy: float32, float64 or float16).") var input: String?
    @Option(parsing: .upToNextOption, help: "Images instead of --input: files or folders (read in batches).")
    var images: [String] = []
    @OptionGroup var preprocessing: PreprocessingOptions

    static let eitherMessage = "give either --input X.npy or --images DIR|FILE... --preset P."

    /// Not both; images need a preset.
    func validate() throws {
        if input != nil && !images.isEmpty { throw ValidationError(Self.eitherMessage) }
        if !images.isEmpty { try preprocessing.requirePreset() }
    }

    /// For the commands that need one of the two.
    func requireOne() throws {
        if input == nil && images.isEmpty { throw ValidationError(Self.eitherMessage) }
    }
}

/// How a command prints its result: text, or with `--json` one JSON object on stdout.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print one JSON object on stdout.") var json = false
}
