import DenseKitKernels

/// How the executor computes the dense layers' 3x3 convs.
public enum ConvolutionMode: String, Sendable, CaseIterable {
    /// Direct convolution: every product of the definition, summed in float32.
    case exact
    /// Winograd F(4x4, 3x3) where it pays (`WinogradPolicy`): 4x fewer multiply-adds there, a little
    /// more rounding (measured on every fixture; see the README).
    case fast

    /// What the executor uses unless told otherwise.
    public static let `default` = ConvolutionMode.fast
}

/// Which Winograd transform a dense block's 3x3 convs use, by its map size (nil: the direct
/// convolution). Measured with DenseNet-121 (docs/performance.md): F(4x4) pays on the 56 and 28 px
/// maps (block 1: 2.1x fewer multiply-adds counting the panels' unused columns; block 2: 2.4x), and on
/// 13 to 15 px maps, whose 4 x 4 tiles fill one vector (`WinogradConvolution`'s rows packed with no
/// lane between them), though their transformed filters are 4x the direct ones (14 MB, read once a
/// run). F(2x2) on 14 px matched the direct convolution alone but lost to it in the network. Maps of
/// 16 to 19 px stay direct, untried (16 px rows of 4 tiles would leave a lane between them); on 7 px
/// neither pays.
package enum WinogradPolicy {
    package static func transform(height: Int, width: Int) -> WinogradTransform? {
        min(height, width) >= 20 || (13...15).contains(height) && (13...15).contains(width) ? .f4 : nil
    }
}
