import ArgumentParser
import DenseKit
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
    @Option(help: "Layout of the written array: nchw or nhwc (default: the preset's).") var layout: String?
    @Flag(help: "Go on past images that cannot be read, and list them.") var skipBad = false
    @Flag(help: "Print one JSON object on stdout.") var json = false

    func run() throws {
        var p = try preprocessing.preprocessing()
        if let layout {
            guard let l = InputSpec.Layout(rawValue: layout) else { throw ValidationError("--layout must be nchw or nhwc, not '\(layout)'.") }
            p.layout = l
        }
        let set = ImageSet(files: try imageFiles(images), preprocessing: p, skipBad: skipBad)
        var rows: [String] = [], values: [Float] = [], shape: [Int]? = nil, skipped: [ImageSet.Failure] = []
        for file in set.files {
            do {
                let image = try set.load(file)
                let s = p.layout == .nchw ? [3, image.height, image.width] : [image.height, image.width, 3]
                if let shape, shape != s {
                    throw ImageSet.Failure(file: file, error: ImageError("preprocessed to \(s), but the images before it to \(shape): use a preset or --crop/--resize that gives one size"))
                }
                shape = s
                rows.append(file)
                values += image.values
            } catch let f as ImageSet.Failure {
                guard skipBad else { throw CommandFailure(f) }
                skipped.append(f)
                log("skipped \(f.file): \(f.description)")
            }
        }
        guard let shape else { throw CommandFailure(file: images.joined(separator: " "), message: "no image could be read") }
        let full = [rows.count] + shape
        try CommandFailure.about(output) { try NPY.write(NPY.Array(shape: full, values: values), to: output) }
        if json {
            printJSON(["output": output, "shape": full, "layout": p.layout.rawValue, "preset": preprocessing.preset ?? "",
                       "files": rows.enumerated().map { ["row": $0.offset, "file": $0.element] },
                       "skipped": skipped.map { ["file": $0.file, "error": $0.description] }])
        } else {
            print("wrote \(output): \(full) float32 \(p.layout.rawValue.uppercased()), \(preprocessing.preset ?? ""): \(PreprocessingOptions.describe(p))")
            for (i, f) in rows.enumerated() { print("row \(i): \(f)") }
            if !skipped.isEmpty { print("skipped \(skipped.count): " + skipped.map(\.file).joined(separator: ", ")) }
        }
    }
}
