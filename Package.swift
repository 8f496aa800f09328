// swift-tools-version:6.0
import PackageDescription

// The executor's kernels are built without runtime checks (-Ounchecked): they only ever index
// buffers whose sizes the executor computed and validated before the call. Nothing that reads a
// file lives in that target. The CPU flags (-target-cpu) come from the Makefile, which detects them.
let kernelSettings: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"])]

let package = Package(
    name: "DenseKit",
    products: [
        .executable(name: "densekit", targets: ["densekit"]),
        .library(name: "DenseKit", targets: ["DenseKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MARK: public API
        .executableTarget(
            name: "densekit",
            dependencies: ["DenseKit", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .target(name: "DenseKit", dependencies: ["DenseKitKernels", "ONNXProto", "CProtobufC", "CHDF5", "CTurboJPEG", "CSPNG"]),
        .target(name: "DenseKitKernels", swiftSettings: kernelSettings),

        // MARK: C shims
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5-serial",
                       providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CProtobufC", pkgConfig: "libprotobuf-c",
                       providers: [.apt(["libprotobuf-c-dev"])]),
        .target(name: "ONNXProto", dependencies: ["CProtobufC"]),
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg",
                       providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CSPNG", pkgConfig: "spng",
                       providers: [.apt(["libspng-dev"])]),

        // MARK: tests
        .target(name: "TestSupport", dependencies: ["DenseKit", "ONNXProto", "CProtobufC", "CHDF5"], path: "Tests/TestSupport"),
        .testTarget(name: "KernelTests", dependencies: ["DenseKitKernels", "TestSupport"]),
        .testTarget(name: "ImportTests", dependencies: ["DenseKit", "TestSupport", "ONNXProto", "CProtobufC", "CHDF5"]),
        .testTarget(name: "ValidationTests", dependencies: ["DenseKit", "TestSupport"]),
        .testTarget(name: "VerifyTests", dependencies: ["DenseKit", "TestSupport"]),
        .testTarget(name: "ExecuteTests", dependencies: ["DenseKit", "TestSupport"]),
        .testTarget(name: "NativeTests", dependencies: ["DenseKit", "TestSupport"]),
        .testTarget(name: "DiffTests", dependencies: ["DenseKit", "TestSupport"]),
        .testTarget(name: "ConvertTests", dependencies: ["DenseKit", "TestSupport", "CHDF5"]),
        .testTarget(name: "CLITests", dependencies: ["DenseKit", "TestSupport", "densekit", "ONNXProto", "CProtobufC", "CHDF5"]),
    ],
    swiftLanguageModes: [.v6]
)
