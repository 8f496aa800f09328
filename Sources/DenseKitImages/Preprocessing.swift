import DenseKitGraph

/// What a framework does to an image before its model sees it, as a value: resize, crop, scale,
/// normalise, channel order, layout. The presets reproduce the frameworks' own pipelines:
///
/// - `torchvision`: torchvision's ImageNet evaluation transform (`torchvision/transforms`, the
///   reference scripts' `ClassificationPresetEval`): PIL `convert("RGB")`, `Resize(256)` (the
///   shorter side to 256, the longer to int(256 * long / short), PIL bilinear, antialiased),
///   `CenterCrop(224)` (offsets int(round((size - 224) / 2))), `ToTensor` (/255),
///   `Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))`, NCHW.
/// - `keras-densenet`: `keras.utils.load_img(path, target_size=(224, 224))` (the whole image to
///   224x224, PIL nearest, Keras's default interpolation), `img_to_array`, then
///   `keras.applications.densenet.preprocess_input` (mode "torch": /255, the same mean and std), NHWC.
/// - `caffe`: the classic Caffe ImageNet pipeline: the whole image to 256x256 (bilinear), the centre
///   224x224, BGR, the mean (103.939, 116.779, 123.68) subtracted (B, G, R), no scaling, NCHW.
/// - `caffe-zoo`: what the ONNX model zoo's Caffe-born DenseNet-121 (`densenet-3` to `-12`) expects and
///   its README leaves out (onnx/models #125): the `caffe` steps with the mean (103.94, 116.78, 123.68),
///   then x 0.017 (a std of 1 / 0.017).
public struct Preprocessing: Sendable, Equatable {
    public enum Resize: Sendable, Equatable {
        case none
        /// The shorter side to this, the other in proportion (torchvision's `Resize(int)`).
        case shorterSide(Int)
        /// The whole image to width x height.
        case exact(width: Int, height: Int)
    }

    public var resize: Resize
    public var filter: ImageResize.Filter
    /// The centre square of this side, when set.
    public var crop: Int?
    /// Each 8-bit value is multiplied by this (1/255 for [0, 1]), then has the mean subtracted and
    /// is divided by the std, per channel in the output's channel order.
    public var divisor: Float
    public var mean: [Float]
    public var std: [Float]
    public var bgr: Bool
    public var layout: InputSpec.Layout

    public enum Preset: String, Sendable, CaseIterable {
        case torchvision
        case kerasDensenet = "keras-densenet"
        case caffe
        case caffeZoo = "caffe-zoo"
    }

    package static let imagenetMean: [Float] = [0.485, 0.456, 0.406], imagenetStd: [Float] = [0.229, 0.224, 0.225]

    /// The preset's pipeline; `size` is the model's input side (224 for the paper's), which scales
    /// the resize as the frameworks' own scripts do (torchvision resizes to size / 0.875).
    public init(_ preset: Preset, size: Int = 224) {
        switch preset {
        case .torchvision:
            self.init(
                resize: .shorterSide(Int((Double(size) / 0.875).rounded(.towardZero))), filter: .bilinear, crop: size,
                divisor: 255, mean: Self.imagenetMean, std: Self.imagenetStd, bgr: false, layout: .nchw)
        case .kerasDensenet:
            self.init(
                resize: .exact(width: size, height: size), filter: .nearest, crop: nil,
                divisor: 255, mean: Self.imagenetMean, std: Self.imagenetStd, bgr: false, layout: .nhwc)
        case .caffe, .caffeZoo:
            let side = Int((Double(size) / 0.875).rounded(.towardZero))
            let zoo = preset == .caffeZoo
            self.init(
                resize: .exact(width: side, height: side), filter: .bilinear, crop: size, divisor: 1,
                mean: zoo ? [103.94, 116.78, 123.68] : [103.939, 116.779, 123.68],
                std: [Float](repeating: zoo ? 1 / 0.017 : 1, count: 3), bgr: true, layout: .nchw)
        }
    }

    public init(
        resize: Resize, filter: ImageResize.Filter, crop: Int?, divisor: Float, mean: [Float], std: [Float], bgr: Bool,
        layout: InputSpec.Layout
    ) {
        self.resize = resize
        self.filter = filter
        self.crop = crop
        self.divisor = divisor
        self.mean = mean
        self.std = std
        self.bgr = bgr
        self.layout = layout
    }

    /// The size after the resize step (before any crop). A size of more than Pillow's
    /// decompression-bomb limit (`ImageDecoder.maximumPixels`) is refused before anything is
    /// allocated: a 65535x1 image with its shorter side resized to 256 would be 16776960x256.
    package func resizedSize(width: Int, height: Int) throws -> (width: Int, height: Int) {
        let size: (width: Double, height: Double)
        switch resize {
        case .none: return (width, height)
        // torchvision: the longer side is int(s * long / short).
        case .shorterSide(let shorter):
            let side = Double(shorter)
            size =
                width <= height
                ? (side, (side * Double(height) / Double(width)).rounded(.down))
                : ((side * Double(width) / Double(height)).rounded(.down), side)
        case .exact(let tw, let th): size = (Double(tw), Double(th))
        }
        guard size.width * size.height <= Double(ImageDecoder.maximumPixels), size.width >= 1, size.height >= 1 else {
            throw ImageError.resizePastLimit(
                fromWidth: width, fromHeight: height, toWidth: Int(size.width), toHeight: Int(size.height),
                limit: ImageDecoder.maximumPixels)
        }
        return (Int(size.width), Int(size.height))
    }

    /// The output's width and height for an image of the given size.
    public func outputSize(width: Int, height: Int) throws -> (width: Int, height: Int) {
        try crop.map { ($0, $0) } ?? resizedSize(width: width, height: height)
    }

    /// The image's values as the framework would feed them, in `layout` ([3, H, W] or [H, W, 3]).
    public func apply(_ image: RGBImage) throws -> [Float] {
        let size = try resizedSize(width: image.width, height: image.height)
        var img = ImageResize.resize(image, width: size.width, height: size.height, filter: filter)
        if let side = crop {
            guard img.width >= side, img.height >= side else {
                throw ImageError.smallerThanCrop(width: img.width, height: img.height, crop: side)
            }
            // torchvision's offsets: int(round((size - crop) / 2.0)), Python's round (half to even).
            let top = Int((Double(img.height - side) / 2).rounded(.toNearestOrEven))
            let left = Int((Double(img.width - side) / 2).rounded(.toNearestOrEven))
            img = img.cropped(left: left, top: top, width: side, height: side)
        }
        let (width, height) = (img.width, img.height)
        let pixels = width * height
        var out = [Float](repeating: 0, count: pixels * 3)
        for p in 0..<pixels {
            for c in 0..<3 {
                let source = bgr ? 2 - c : c
                // The frameworks' own float32 operations in their order: scale, subtract, divide.
                let value = (Float(img.pixels[p * 3 + source]) / divisor - mean[c]) / std[c]
                out[layout == .nchw ? c * pixels + p : p * 3 + c] = value
            }
        }
        return out
    }
}
