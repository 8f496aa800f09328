import ArgumentParser
import DenseKit
import DenseKitGraph

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a model file holds and the DenseNet structure recognised in it.")

    @Argument(help: "The model file (.onnx, .h5, .weights.h5, .keras, .dnk).") var model: String
    @Flag(help: "Print one JSON object on stdout.") var json = false

    func run() throws {
        let net = try loadModel(model)
        if json {
            printJSON(net.summary)
        } else {
            print(StructureReport(net: net).text)
        }
    }
}
