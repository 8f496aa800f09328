/// Where a canonical graph came from: file, format, producer, and what the file itself stored.
public struct ModelSource: Sendable, Codable {
    public enum Format: String, Sendable, Codable {
        /// ONNX protobuf (external data included).
        case onnx
        /// Keras full-model `.h5` (Keras 2 or 3).
        case kerasH5 = "keras-h5"
        /// Keras weights-only `.h5` (`save_weights`; the published pretrained files).
        case kerasWeightsH5 = "keras-weights-h5"
        /// Keras 3 `.weights.h5`.
        case kerasV3Weights = "keras3-weights-h5"
        /// Keras 3 `.keras` zip archive.
        case kerasArchive = "keras"
        /// DenseKit's native format.
        case dnk
        /// A PyTorch state_dict in safetensors.
        case safetensors
        /// A PyTorch `.pth` (torch.save, zip or legacy format).
        case pth
        /// A TensorFlow Lite flatbuffer.
        case tflite
    }
    public var path: String
    public var format: Format
    /// e.g. "pytorch 2.15.0", "tf2onnx 1.17.0", "keras 3.15.1".
    public var producer: String
    /// ONNX default-domain opset, when the source is ONNX.
    public var opset: Int?
    /// Parameters the file stores (after any folding the exporter did), counted as elements.
    public var storedParameters: Int
    /// Bytes of tensor data the file stores.
    public var storedBytes: Int
    /// Number of weight tensors the file stores.
    public var storedTensors: Int
    /// Free-form notes about how the structure was recovered (shown by `inspect`).
    public var notes: [String]

    public init(
        path: String, format: Format, producer: String, opset: Int? = nil, storedParameters: Int,
        storedBytes: Int, storedTensors: Int, notes: [String] = []
    ) {
        self.path = path
        self.format = format
        self.producer = producer
        self.opset = opset
        self.storedParameters = storedParameters
        self.storedBytes = storedBytes
        self.storedTensors = storedTensors
        self.notes = notes
    }
}

/// The model's input as the source declares it.
public struct InputSpec: Sendable, Equatable {
    public enum Layout: String, Sendable, CaseIterable, Codable { case nchw, nhwc }
    public var name: String
    public var layout: Layout
    public var channels: Int
    /// Fixed spatial size, or nil when the file leaves it dynamic.
    public var height: Int?
    public var width: Int?
    /// Fixed batch size, or nil when dynamic.
    public var batch: Int?

    public init(name: String, layout: Layout, channels: Int, height: Int?, width: Int?, batch: Int?) {
        self.name = name
        self.layout = layout
        self.channels = channels
        self.height = height
        self.width = width
        self.batch = batch
    }

    /// The declared shape in the source's own layout, with "?" for dynamic axes.
    public var shapeDescription: String {
        let text = { (v: Int?) in v.map(String.init) ?? "?" }
        switch layout {
        case .nchw: return "[\(text(batch)), \(channels), \(text(height)), \(text(width))]"
        case .nhwc: return "[\(text(batch)), \(text(height)), \(text(width)), \(channels)]"
        }
    }
}
