import DenseKitKernels

/// How the executor computes the dense layers' 3x3 convs.
public enum ConvolutionMode: String, Sendable, CaseIterable {
    /// Direct convolution: every product of the definition, summed in float32.
    case exact
    /// Winograd F(4x4, 3x3) or F(2x2, 3x3) where it pays (`WinogradPolicy`): 2.25-4x fewer
    /// multiply-adds, a little more rounding (measured on every fixture; see the README).
    case fast

    /// What the executor uses unless told otherwise.
    public static let `default` = ConvolutionMode.fast
}

/// Which Winograd transform a dense block's 3x3 convs use, by its map size. Measured with
/// DenseNet-121 on an AMD EPYC (Zen 4, 1 thread; `make bench`): F(4x4) pays on the 56 and 28 px maps
/// (block 1: 2.1x fewer multiply-adds counting the panels' unused columns; block 2: 2.4x), F(2x2) a
/// little on 14 px (4 x 4 tiles of F(4x4) would waste a quarter of their outputs there), and on 7 px
/// neither beats the direct convolution.
enum WinogradPolicy {
    static func transform(height: Int, width: Int) -> WinogradTransform? {
        let side = min(height, width)
        return side >= 20 ? .f4 : side >= 10 ? .f2 : nil
    }
}
