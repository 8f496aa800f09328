import ArgumentParser
import DenseKit
import DenseKitFormats
import DenseKitGraph
import DenseKitImages
import Foundation

struct Preprocess: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode JPEG/PNG images and write the batch a framework's pipeline would feed its model (.npy).",
        discussion: """
            IMAGES are files or folders (a folder's .jpg, .jpeg and .png files in name order). Presets: \
            torchvision (Resize(256) bilinear antialiased, CenterCrop(224), /255, ImageNet mean and std, NCHW), \
            keras-densenet (load_img to 224x224 nearest, then densenet.preprocess_input, NHWC), caffe (256x256, \
            centre 224, BGR, mean subtracted, NCHW). The output says which file is which row.
            """)

    @Argument(help: "Image files or folders.") var images: [String]
    @Option(name: .shortAndLong, help: "The .npy file to write.") var output: String
    @OptionGroup var preprocessing: PreprocessingOptions
    @Option(help: "Layout of the written array (default: the preset's).") var layout: InputSpec.Layout?
    @Flag(help: "Go on past images that cannot be read, and list them.") var skipBad = false
    @OptionGroup var rendering: OutputOptions

    func validate() throws { try preprocessing.requirePreset() }

    func run() throws {
        var pipeline = try preprocessing.preprocessing()
        if let layout { pipeline.layout = layout }
        let set = ImageSet(files: try imageFiles(images), preprocessing: pipeline, skipBad: skipBad)
        var all: ImageSet.Batch? = nil
        let skipped = try withProgress("preprocess", blaming: images.joined(separator: " ")) { _ in
            try set.forEachBatch(size: .max) { all = $0 }
        }
        for f in skipped { log("skipped \(f.file): \(f.description)") }
        guard let all else {
            throw CommandFailure(file: images.joined(separator: " "), message: "no image could be read")
        }
        let rows = all.files
        let values = all.values
        let shape = pipeline.layout == .nchw ? [3, all.height, all.width] : [all.height, all.width, 3]
        let full = [rows.count] + shape
        try CommandFailure.about(output) { try NPY.write(NPY.Array(shape: full, values: values), to: output) }
        if rendering.json {
            printJSON(
                PreprocessReport(
                    output: output, shape: full, layout: pipeline.layout.rawValue,
                    preset: preprocessing.preset?.rawValue ?? "",
                    files: rows, skipped: skipped.map { SkippedFile(file: $0.file, error: $0.description) }))
        } else {
            print(
                """
                wrote \(output): \(full) float32 \(pipeline.layout.rawValue.uppercased()), \
                \(preprocessing.preset?.rawValue ?? ""): \(PreprocessingOptions.describe(pipeline))
                """
            )
            for (i, f) in rows.enumerated() { print("row \(i): \(f)") }
            if !skipped.isEmpty { print("skipped \(skipped.count): " + skipped.map(\.file).joined(separator: ", ")) }
        }
    }
}
