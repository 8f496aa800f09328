/// What `run --json` prints after running an input array: the output's shape and the timings.
public struct RunReport: Encodable, Sendable {
    public struct Times: Encodable, Sendable {
        public var median: Double
        public var min: Double

        public init(median: Double, min: Double) {
            self.median = median
            self.min = min
        }
    }

    public var outputShape: [Int]
    public var loadMs: Double
    public var prepareMs: Double
    public var runMs: Times
    public var threads: Int
    /// "fast" or "exact".
    public var convolutions: String
    public var runs: Int

    public init(
        outputShape: [Int], loadMs: Double, prepareMs: Double, runMs: Times, threads: Int, convolutions: String,
        runs: Int
    ) {
        self.outputShape = outputShape
        self.loadMs = loadMs
        self.prepareMs = prepareMs
        self.runMs = runMs
        self.threads = threads
        self.convolutions = convolutions
        self.runs = runs
    }
}

/// What `run --images --json` prints: each image's best classes.
public struct ImageRunReport: Encodable, Sendable {
    public struct Class: Encodable, Sendable {
        public var `class`: Int
        /// Null without a name for the class.
        public var label: Nullable<String>
        public var score: ReportNumber

        public init(index: Int, label: String?, score: Float) {
            self.class = index
            self.label = Nullable(label)
            self.score = ReportNumber(score)
        }
    }

    public struct Image: Encodable, Sendable {
        public var file: String
        public var top: [Class]

        public init(file: String, top: [Class]) {
            self.file = file
            self.top = top
        }
    }

    public var outputShape: [Int]
    public var images: [Image]
    public var skipped: [SkippedFile]

    public init(outputShape: [Int], images: [Image], skipped: [SkippedFile]) {
        self.outputShape = outputShape
        self.images = images
        self.skipped = skipped
    }
}

/// What `preprocess --json` prints: the array written and which file is which row.
public struct PreprocessReport: Encodable, Sendable {
    public struct Row: Encodable, Sendable {
        public var row: Int
        public var file: String
    }

    public var output: String
    public var shape: [Int]
    public var layout: String
    public var preset: String
    public var files: [Row]
    public var skipped: [SkippedFile]

    public init(output: String, shape: [Int], layout: String, preset: String, files: [String], skipped: [SkippedFile]) {
        self.output = output
        self.shape = shape
        self.layout = layout
        self.preset = preset
        self.files = files.enumerated().map { Row(row: $0.offset, file: $0.element) }
        self.skipped = skipped
    }
}
