import Foundation

/// A decoded image as PIL's `convert("RGB")` leaves it: 8-bit RGB, interleaved, row-major. Alpha
/// is dropped without compositing, gray is replicated to three channels, palettes are expanded.
public struct RGBImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// width * height * 3 bytes.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// The pixels of the rectangle at (`left`, `top`), which lies inside the image.
    public func cropped(left: Int, top: Int, width cropWidth: Int, height cropHeight: Int) -> RGBImage {
        var out = [UInt8](repeating: 0, count: cropWidth * cropHeight * 3)
        for y in 0..<cropHeight {
            let from = ((top + y) * width + left) * 3
            out.replaceSubrange(
                (y * cropWidth * 3)..<((y + 1) * cropWidth * 3), with: pixels[from..<(from + cropWidth * 3)])
        }
        return RGBImage(width: cropWidth, height: cropHeight, pixels: out)
    }
}

/// Why an image cannot be used, with what it is about; `description` is the one line after `error: <file>: `.
public enum ImageError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file could not be read: missing, not a regular file, or over the size cap.
    case unreadable(String)
    /// Neither JPEG nor PNG: the file's first bytes in hex (empty for an empty file).
    case notAnImage(firstBytes: String)
    /// A JPEG or PNG that its decoder, or Pillow's judgement of its chunks, refuses.
    case malformed(format: String, problem: String)
    /// A PNG chunk Pillow would refuse, by its name (or its bytes, when they are not a name).
    case badChunk(String, problem: String)
    /// A size the header claims with no pixels.
    case empty(width: Int, height: Int)
    /// A size the header claims past the pixel limit (Pillow's decompression-bomb limit).
    case tooManyPixels(width: Int, height: Int, limit: Int)
    /// A resize from one size to one past the pixel limit, refused before anything is allocated.
    case resizePastLimit(fromWidth: Int, fromHeight: Int, toWidth: Int, toHeight: Int, limit: Int)
    /// After resizing, smaller than the crop.
    case smallerThanCrop(width: Int, height: Int, crop: Int)
    /// Preprocessed to another size than the images before it in the batch.
    case sizeDiffers(width: Int, height: Int, batchWidth: Int, batchHeight: Int)
    /// No image of a set could be used.
    case noUsableImage

    private static let bombLimit = "(Pillow's decompression-bomb limit)"

    public var description: String {
        switch self {
        case .unreadable(let problem): return problem
        case .notAnImage(let firstBytes):
            return firstBytes.isEmpty
                ? "empty file, not an image" : "not a JPEG or PNG image (the file starts with \(firstBytes))"
        case .malformed(_, let problem): return problem
        case .badChunk(let chunk, let problem): return "broken PNG: chunk \(chunk) \(problem)"
        case .empty(let width, let height): return "the header claims \(width)x\(height) pixels"
        case .tooManyPixels(let width, let height, let limit):
            return "the header claims \(width)x\(height) pixels, more than the \(limit)-pixel limit \(Self.bombLimit)"
        case .resizePastLimit(let fromWidth, let fromHeight, let toWidth, let toHeight, let limit):
            return """
                resizing \(fromWidth)x\(fromHeight) to \(toWidth)x\(toHeight) would make more than the \
                \(limit)-pixel limit \(Self.bombLimit)
                """
        case .smallerThanCrop(let width, let height, let crop):
            return "\(width)x\(height) after resizing is smaller than the \(crop)x\(crop) crop"
        case .sizeDiffers(let width, let height, let batchWidth, let batchHeight):
            return """
                preprocessed to \(width)x\(height), but the images before it to \(batchWidth)x\(batchHeight): \
                use a preset or --crop/--resize that gives one size
                """
        case .noUsableImage: return "no image could be used"
        }
    }
}
