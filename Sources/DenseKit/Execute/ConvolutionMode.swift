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
/// convolution). Measured with DenseNet-121 on an AMD EPYC (Zen 4, 1 thread): F(4x4) pays on the 56
/// and 28 px maps (block 1: 2.1x fewer multiply-adds counting the panels' unused columns; block 2:
/// 2.4x). On 14 px, F(2x2) matched the direct convolution alone but lost to it in the network (block
/// 3's 24 convs 4.4-5.6 ms against 3.9-4.3 ms direct, six interleaved runs), and F(4x4)'s 4 x 4 tiles
/// would waste a quarter of their outputs; on 7 px neither pays.
enum WinogradPolicy {
    static func transform(height: Int, width: Int) -> WinogradTransform? {
        min(height, width) >= 20 ? .f4 : nil
    }
}
