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
    public func cropped(left: Int, top: Int, width w: Int, height h: Int) -> RGBImage {
        var out = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h {
            let from = ((top + y) * width + left) * 3
            out.replaceSubrange((y * w * 3)..<((y + 1) * w * 3), with: pixels[from..<(from + w * 3)])
        }
        return RGBImage(width: w, height: h, pixels: out)
    }
}

/// An image that cannot be used; `description` is the one line after `error: <file>: `.
public struct ImageError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
