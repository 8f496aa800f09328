import ArgumentParser
import DenseKit
import DenseKitGraph

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a model file holds and the DenseNet structure recognised in it.")

    @Argument(help: "The model file (.onnx, .h5, .weights.h5, .keras, .dnk).") var model: String
    @OptionGroup var rendering: OutputOptions

    func run() throws {
        let net = try loadModel(model)
        if rendering.json {
            printJSON(InspectReport(net))
        } else {
            print(InspectText(net: net).text)
        }
    }
}
