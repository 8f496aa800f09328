/// Whose integer arithmetic a quantised model runs with: the framework that made the file defines how its codes
/// are requantised, rounded and combined, and the integer executor reproduces that framework's.
public enum IntegerArithmetic: String, Sendable, Codable {
    /// onnxruntime's (MLAS): float requantisation multipliers, rounding to nearest even; a BatchNormalization runs
    /// in float.
    case onnxruntime
    /// TensorFlow Lite's kernels: fixed-point requantisation (a 32-bit multiplier and a shift, gemmlowp's rounding);
    /// a BatchNorm is the converter's int8 MUL then ADD; a CONCATENATION's inputs share its output's parameters.
    case tflite

    /// How the framework is named in notes and messages.
    public var framework: String {
        switch self {
        case .onnxruntime: return "onnxruntime"
        case .tflite: return "TensorFlow Lite"
        }
    }
}
