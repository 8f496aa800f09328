import DenseKitExecute

/// Images to feed a model, read and preprocessed a batch at a time, so memory is that of one batch
/// whatever the number of files.
public struct ImageSet: Sendable {
    public var files: [String]
    public var preprocessing: Preprocessing
    /// Go on past an image that cannot be used (it is listed in `skipped`) instead of failing.
    public var skipBad: Bool

    /// An image that could not be used, with why; thrown unless `skipBad`.
    public struct Failure: Error, CustomStringConvertible {
        public var file: String
        public var error: ImageError
        public var description: String { error.description }
        public init(file: String, error: ImageError) {
            self.file = file
            self.error = error
        }
    }

    public init(files: [String], preprocessing: Preprocessing, skipBad: Bool = false) {
        self.files = files
        self.preprocessing = preprocessing
        self.skipBad = skipBad
    }

    /// One image's values in the preprocessing's layout.
    public func load(_ file: String) throws -> (values: [Float], width: Int, height: Int) {
        do {
            let image = try ImageDecoder.decode(path: file)
            let size = try preprocessing.outputSize(width: image.width, height: image.height)
            return (try preprocessing.apply(image), size.width, size.height)
        } catch let e as ImageError {
            throw Failure(file: file, error: e)
        }
    }

    /// A batch of preprocessed images: their files and values, `files.count` images of
    /// `width` x `height` in the preprocessing's layout.
    public struct Batch {
        public var files: [String]
        public var values: [Float]
        public var width: Int
        public var height: Int
    }

    /// Calls `body` with each batch of up to `size` usable images, in the preprocessing's layout
    /// (`Int.max`: all of them as one batch); returns the skipped files with their errors. Every image
    /// of a run must come out the same size (a preprocessing that crops or resizes to a fixed size).
    @discardableResult
    public func forEachBatch(size: Int, _ body: (Batch) throws -> Void) throws -> [Failure] {
        var skipped: [Failure] = []
        var batch: Batch? = nil
        for file in files {
            let image: (values: [Float], width: Int, height: Int)
            do {
                image = try load(file)
            } catch let f as Failure where skipBad {
                skipped.append(f)
                continue
            }
            if let current = batch, (current.width, current.height) != (image.width, image.height) {
                throw Failure(
                    file: file,
                    error: .sizeDiffers(
                        width: image.width, height: image.height, batchWidth: current.width, batchHeight: current.height
                    ))
            }
            if batch == nil { batch = Batch(files: [], values: [], width: image.width, height: image.height) }
            batch!.files.append(file)
            batch!.values += image.values
            if batch!.files.count == size {
                try body(batch!)
                batch!.files = []
                batch!.values = []
            }
        }
        if let batch, !batch.files.isEmpty { try body(batch) }
        return skipped
    }

    /// `forEachBatch` with each batch as the executor takes it: NCHW, whatever the preprocessing's layout.
    @discardableResult
    public func forEachInput(size: Int, _ body: (_ files: [String], _ input: ModelInput) throws -> Void) throws
        -> [Failure]
    {
        var nchw = self
        nchw.preprocessing.layout = .nchw
        return try nchw.forEachBatch(size: size) { b in
            try body(b.files, ModelInput(batch: b.files.count, height: b.height, width: b.width, values: b.values))
        }
    }
}
