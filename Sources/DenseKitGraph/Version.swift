/// DenseKit's version: `densekit --version`, and the provenance every written file records.
public enum DenseKitVersion {
    public static let string = "0.3.0"
}
