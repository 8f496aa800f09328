import DenseKitImages

/// `diff A B --images DIR`: both models over a set of images, streamed a batch at a time (memory is
/// that of one batch and two runs, whatever the number of images), with each image's outcome kept.
public enum DatasetDiff {
    public struct Image: Sendable {
        public var file: String
        public var sample: ModelDiff.Sample
    }

    public struct Report: Sendable {
        /// Every layer and the output over all images.
        public var result: ModelDiff.Result
        public var images: [Image]
        public var skipped: [ImageSet.Failure]
        /// With a sensitivity analysis: each layer's entry over every image, in execution order.
        public var sensitivity: [QuantizationSensitivity.Entry]? = nil

        /// The images whose top-1 class differs between the two models.
        public var flips: [Image] { images.filter { !$0.sample.top1Agrees } }

        /// The `count` images with the largest output error (relative to the output's scale), worst first;
        /// a NaN error is the worst.
        public func worst(_ count: Int) -> [Image] {
            func error(_ image: Image) -> Float {
                image.sample.output.maxRel.isNaN ? .infinity : image.sample.output.maxRel
            }
            return Array(images.sorted { error($0) > error($1) }.prefix(count))
        }

        /// For each layer that is the first divergent one on some image: how many images, in layer order.
        public var firstDivergences: [(layer: String, images: Int)] {
            var counts: [String: Int] = [:]
            for i in images { if let layer = i.sample.firstDivergence { counts[layer, default: 0] += 1 } }
            return result.layers.compactMap { layer in counts[layer.name].map { (layer.name, $0) } }
        }
    }

    /// `progress(done, total)` after each batch; `sensitivity` also runs on every batch.
    public static func run(
        _ diff: ModelDiff, images: ImageSet, batchSize: Int = 16, sensitivity: QuantizationSensitivity? = nil,
        progress: (Int, Int) -> Void = { _, _ in }
    ) throws -> Report {
        var result: ModelDiff.Result? = nil
        var done: [Image] = []
        var entries: [QuantizationSensitivity.Entry] = []
        let skipped = try images.forEachInput(size: batchSize) { files, x in
            let batchResult = try diff.run(x.values, batch: x.batch, height: x.height, width: x.width)
            if let sensitivity {
                let batchEntries = try sensitivity.run(x.values, batch: x.batch, height: x.height, width: x.width)
                entries = QuantizationSensitivity.merged(entries, batchEntries)
            }
            done += zip(files, batchResult.samples).map { Image(file: $0, sample: $1) }
            if result == nil { result = batchResult } else { result!.merge(batchResult) }
            progress(done.count, images.files.count)
        }
        guard let result else { throw ImageError.noUsableImage }
        return Report(
            result: result, images: done, skipped: skipped, sensitivity: sensitivity == nil ? nil : entries)
    }
}
