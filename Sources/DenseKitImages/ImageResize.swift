import Foundation

/// Resizing as Pillow's `Image.resize` does it (libImaging/Resample.c, Geometry.c), so that a
/// preset reproduces torchvision's and Keras's pipelines pixel for pixel.
public enum ImageResize {
    public enum Filter: String, Sendable, CaseIterable {
        /// Pillow's BILINEAR: a triangle filter whose support widens with the reduction (antialiasing),
        /// applied horizontally then vertically with 8-bit rounding between the passes.
        case bilinear
        /// Pillow's NEAREST: the source pixel under each output pixel's centre.
        case nearest
    }

    public static func resize(_ image: RGBImage, width: Int, height: Int, filter: Filter) -> RGBImage {
        if image.width == width && image.height == height { return image }
        switch filter {
        case .nearest: return nearest(image, width, height)
        case .bilinear:
            var out = image
            if width != image.width { out = horizontal(out, width) }
            if height != image.height { out = vertical(out, height) }
            return out
        }
    }

    // MARK: bilinear (Resample.c)

    /// Pillow's fixed-point precision for 8-bit images.
    package static let precision = 22

    /// For each output position: the first input index, the count, and the weights in fixed point.
    package static func coefficients(input: Int, output: Int) -> (bounds: [(Int, Int)], weights: [[Int32]]) {
        let scale = Double(input) / Double(output)
        let filterScale = max(scale, 1)
        let support = 1.0 * filterScale
        var bounds: [(Int, Int)] = []
        var weights: [[Int32]] = []
        for xx in 0..<output {
            let center = (Double(xx) + 0.5) * scale
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), input) - xmin
            let ss = 1.0 / filterScale
            var taps = (0..<max(xmax, 0)).map { x -> Double in
                let distance = abs((Double(x + xmin) - center + 0.5) * ss)
                return distance < 1 ? 1 - distance : 0
            }
            let total = taps.reduce(0, +)
            if total != 0 { taps = taps.map { $0 / total } }
            bounds.append((xmin, max(xmax, 0)))
            weights.append(
                taps.map { w in
                    Int32(
                        w < 0
                            ? (-0.5 + w * Double(1 << precision)).rounded(.towardZero)
                            : (0.5 + w * Double(1 << precision)).rounded(.towardZero))
                })
        }
        return (bounds, weights)
    }

    @inline(__always) package static func clip8(_ value: Int32) -> UInt8 {
        let shifted = value >> Int32(precision)
        return shifted < 0 ? 0 : shifted > 255 ? 255 : UInt8(shifted)
    }

    /// One output pixel of a pass: the taps' weighted sum of `count` input pixels `step` bytes apart from
    /// `first`, per channel, in Pillow's fixed point and rounding; written at `target`.
    @inline(__always) private static func resample(
        _ src: UnsafeBufferPointer<UInt8>, from first: Int, step: Int, _ taps: [Int32], count: Int,
        into out: inout [UInt8], at target: Int
    ) {
        var s0: Int32 = 1 << (precision - 1)
        var s1 = s0
        var s2 = s0
        for tap in 0..<count {
            let source = first + tap * step
            s0 &+= Int32(src[source]) &* taps[tap]
            s1 &+= Int32(src[source + 1]) &* taps[tap]
            s2 &+= Int32(src[source + 2]) &* taps[tap]
        }
        out[target] = clip8(s0)
        out[target + 1] = clip8(s1)
        out[target + 2] = clip8(s2)
    }

    package static func horizontal(_ image: RGBImage, _ width: Int) -> RGBImage {
        let (bounds, weights) = coefficients(input: image.width, output: width)
        var out = [UInt8](repeating: 0, count: width * image.height * 3)
        image.pixels.withUnsafeBufferPointer { src in
            for y in 0..<image.height {
                let row = y * image.width * 3
                for xx in 0..<width {
                    let (xmin, count) = bounds[xx]
                    resample(
                        src, from: row + xmin * 3, step: 3, weights[xx], count: count, into: &out,
                        at: (y * width + xx) * 3)
                }
            }
        }
        return RGBImage(width: width, height: image.height, pixels: out)
    }

    package static func vertical(_ image: RGBImage, _ height: Int) -> RGBImage {
        let (bounds, weights) = coefficients(input: image.height, output: height)
        let inputWidth = image.width
        var out = [UInt8](repeating: 0, count: inputWidth * height * 3)
        image.pixels.withUnsafeBufferPointer { src in
            for yy in 0..<height {
                let (ymin, count) = bounds[yy]
                let taps = weights[yy]
                for x in 0..<inputWidth {
                    resample(
                        src, from: (ymin * inputWidth + x) * 3, step: inputWidth * 3, taps, count: count, into: &out,
                        at: (yy * inputWidth + x) * 3)
                }
            }
        }
        return RGBImage(width: inputWidth, height: height, pixels: out)
    }

    // MARK: nearest (Geometry.c, ImagingScaleAffine)

    package static func nearest(_ image: RGBImage, _ width: Int, _ height: Int) -> RGBImage {
        // Pillow steps the source coordinate by the scale in double precision from half a step in.
        func table(_ input: Int, _ output: Int) -> [Int] {
            let step = Double(input) / Double(output)
            var at = step * 0.5
            return (0..<output).map { _ in
                defer { at += step }
                return at < 0 ? -1 : min(Int(at), input - 1)
            }
        }
        let xs = table(image.width, width)
        let ys = table(image.height, height)
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for (y, sy) in ys.enumerated() {
            for (x, sx) in xs.enumerated() {
                let source = (sy * image.width + sx) * 3
                let target = (y * width + x) * 3
                out[target] = image.pixels[source]
                out[target + 1] = image.pixels[source + 1]
                out[target + 2] = image.pixels[source + 2]
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }
}
