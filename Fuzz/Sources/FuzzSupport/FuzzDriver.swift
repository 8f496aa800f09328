import Foundation

/// libFuzzer's driver, called from main (SwiftPM's executables bring their own main).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ body: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

nonisolated(unsafe) private var target: (Data) -> Void = { _ in }

/// Runs libFuzzer with the process's arguments on `body`, which must turn any bytes into a result
/// or an error, never a crash.
public func fuzz(_ body: @escaping (Data) -> Void) -> Never {
    target = body
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(
        runFuzzerDriver(&argc, &argv) { bytes, count in
            target(bytes.map { Data(bytes: $0, count: count) } ?? Data())
            return 0
        })
}
