/// A max or average pooling window.
public struct Pool2D: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable { case max, average }
    public var kind: Kind
    public var kernel: Int
    public var stride: Int
    /// Padding: top, left, bottom, right. Max pooling pads with -infinity; average pooling
    /// excludes padding from the divisor unless `countIncludePad`.
    public var pads: [Int]
    public var countIncludePad: Bool
    /// The quantisation of the activation this op reads, when the model is quantised there.
    public var inputQuantization: Quantization? = nil
    /// The quantisation of the activation this op gives (after the ReLU that follows it in the canonical graph).
    public var outputQuantization: Quantization? = nil

    public init(kind: Kind, kernel: Int, stride: Int, pads: [Int] = [0, 0, 0, 0], countIncludePad: Bool = false) {
        self.kind = kind
        self.kernel = kernel
        self.stride = stride
        self.pads = pads
        self.countIncludePad = countIncludePad
    }

    /// Output height and width for an input of the given size (floor mode; 0 where the window does
    /// not fit). Only for a validated pool: stride >= 1, four pads.
    public func outputSize(_ height: Int, _ width: Int) -> (Int, Int) {
        (windows(height + pads[0] + pads[2], kernel, stride), windows(width + pads[1] + pads[3], kernel, stride))
    }
}
