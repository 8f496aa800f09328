import DenseKit
import Foundation

/// libFuzzer's driver, called from main (SwiftPM's executables bring their own main).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzer(_ argc: UnsafeMutablePointer<CInt>,
               _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
               _ body: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

/// Any bytes must give a model or an error, never a crash.
var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
exit(runFuzzer(&argc, &argv) { bytes, count in
    let data = bytes.map { Data(bytes: $0, count: count) } ?? Data()
    _ = try? DNKReader.load(data: data, path: "fuzz.dnk")
    return 0
})
