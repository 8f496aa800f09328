/// A Winograd minimal filtering algorithm F(m x m, 3 x 3) (Lavin and Gray,
/// "Fast Algorithms for Convolutional Neural Networks", 2016): an output tile m x m is
/// A^T [(G g G^T) * (B^T d B)] A for the 3x3 filter g and the (m + 2) x (m + 2) input tile d, with *
/// elementwise. (m + 2)^2 multiplies per tile instead of 9 m^2: 4x fewer for F(4x4), the one the
/// executor uses. (F(2x2), 2.25x fewer, was measured slower than the direct convolution on the 14 px
/// maps it would suit, so it is not kept.)
///
/// F(4x4) interpolates at 0, 1, -1, 2, -2 (and infinity); its coefficients add rounding error
/// (measured in `WinogradConvolutionTests` and on every model fixture; the README gives the figures).
public struct WinogradTransform: Sendable, Equatable {
    /// The output tile's side (the paper's m).
    public let outputSide: Int
    /// The input tile's side, m + 2 (the paper's alpha).
    public var alpha: Int { outputSide + 2 }
    /// G (alpha x 3, row-major), for the filter transform. B^T and A^T are written out in
    /// `WinogradConvolution`'s unrolled 1-D transforms (their rows in the comments there); the
    /// impulse-response tests pin every coefficient of all three.
    let filterMatrix: [Double]

    public static let f4 = WinogradTransform(
        outputSide: 4,
        filterMatrix: [
            1.0 / 4, 0, 0,
            -1.0 / 6, -1.0 / 6, -1.0 / 6,
            -1.0 / 6, 1.0 / 6, -1.0 / 6,
            1.0 / 24, 1.0 / 12, 1.0 / 6,
            1.0 / 24, -1.0 / 12, 1.0 / 6,
            0, 0, 1,
        ])
}
