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
            let size = preprocessing.outputSize(width: image.width, height: image.height)
            return (try preprocessing.apply(image), size.width, size.height)
        } catch let e as ImageError {
            throw Failure(file: file, error: e)
        }
    }

    /// Calls `body` with each batch of up to `size` usable images (NCHW, as the executor takes them)
    /// and their files; returns the skipped files with their errors. Every image of a run must come
    /// out the same size (a preprocessing that crops or resizes to a fixed size).
    @discardableResult
    public func forEachBatch(size: Int, _ body: (_ files: [String], _ input: ModelInput) throws -> Void) throws -> [Failure] {
        var nchw = preprocessing
        nchw.layout = .nchw
        let set = ImageSet(files: files, preprocessing: nchw, skipBad: skipBad)
        var skipped: [Failure] = []
        var batchFiles: [String] = [], values: [Float] = [], shape: (Int, Int)? = nil
        func flush() throws {
            guard let (w, h) = shape, !batchFiles.isEmpty else { return }
            try body(batchFiles, ModelInput(batch: batchFiles.count, height: h, width: w, values: values))
            batchFiles = []
            values = []
        }
        for file in files {
            let image: (values: [Float], width: Int, height: Int)
            do {
                image = try set.load(file)
            } catch let f as Failure where skipBad {
                skipped.append(f)
                continue
            }
            if let (w, h) = shape, (w, h) != (image.width, image.height) {
                throw Failure(file: file, error: ImageError("preprocessed to \(image.width)x\(image.height), but the images before it to \(w)x\(h): use a preset or --crop/--resize that gives one size"))
            }
            shape = (image.width, image.height)
            batchFiles.append(file)
            values += image.values
            if batchFiles.count == size { try flush() }
        }
        try flush()
        return skipped
    }
}
