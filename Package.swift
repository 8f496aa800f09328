// swift-tools-version:6.0
import PackageDescription

// The executor's kernels are built without runtime checks (-Ounchecked): they only ever index
// buffers whose sizes the executor computed and validated before the call. Nothing that reads a
// file lives in that target. The CPU flags (-target-cpu) come from the Makefile, which detects them.
let kernelSettings: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"])]

/// Every library target, for the tests (which may import any of them).
let libraryTargets: [Target.Dependency] = [
    "DenseKitGraph", "DenseKitKernels", "DenseKitExecute", "DenseKitFormats", "DenseKitImages", "DenseKit",
]

let package = Package(
    name: "DenseKit",
    products: [
        .executable(name: "densekit", targets: ["densekit"]),
        .library(
            name: "DenseKit",
            targets: [
                "DenseKitGraph", "DenseKitKernels", "DenseKitExecute", "DenseKitFormats",
                "DenseKitImages", "DenseKit",
            ]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // MARK: the library, bottom to top. Each target imports only the ones listed before it, and
        // each C library is reached from one target (and one Swift file in it).

        /// The canonical graph, layer identity, validation (the single gate) and the verifier. No C.
        .target(name: "DenseKitGraph"),
        /// SIMD kernels and their plain references.
        .target(name: "DenseKitKernels", swiftSettings: kernelSettings),
        /// The execution plan and the executors.
        .target(name: "DenseKitExecute", dependencies: ["DenseKitGraph", "DenseKitKernels"]),
        /// One folder per file format, reader and writer together.
        .target(
            name: "DenseKitFormats",
            dependencies: [
                "DenseKitGraph", "DenseKitKernels", "DenseKitExecute", "ONNXProto", "CProtobufC", "CHDF5",
                "TFLiteSchema",
            ]),
        /// Image decoders (each behind its C library), PIL-exact conversions and resizes, presets.
        .target(
            name: "DenseKitImages",
            dependencies: ["DenseKitGraph", "DenseKitExecute", "DenseKitFormats", "CTurboJPEG", "CSPNG"]),
        /// The pipelines: loading (and isolation), conversion, diff, reports.
        .target(
            name: "DenseKit",
            dependencies: [
                "DenseKitGraph", "DenseKitExecute", "DenseKitFormats", "DenseKitImages",
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        /// The command-line tool: parses, calls the library, renders.
        .executableTarget(
            name: "densekit",
            dependencies: [
                "DenseKit", "DenseKitGraph", "DenseKitExecute", "DenseKitFormats", "DenseKitImages",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // MARK: C libraries
        .systemLibrary(
            name: "CHDF5", pkgConfig: "hdf5-serial",
            providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(
            name: "CProtobufC", pkgConfig: "libprotobuf-c",
            providers: [.apt(["libprotobuf-c-dev"])]),
        .target(name: "ONNXProto", dependencies: ["CProtobufC"]),
        /// TensorFlow Lite's schema: flatc's generated accessors and FlatBuffers' verifier (header-only, Debian's
        /// libflatbuffers-dev) behind a C interface.
        .target(name: "TFLiteSchema"),
        .systemLibrary(
            name: "CTurboJPEG", pkgConfig: "libturbojpeg",
            providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(
            name: "CSPNG", pkgConfig: "spng",
            providers: [.apt(["libspng-dev"])]),

        // MARK: tests (TestSupport alone edits files through the C libraries, for the corrupt-file cases)
        .target(
            name: "TestSupport", dependencies: libraryTargets + ["ONNXProto", "CProtobufC", "CHDF5", "TFLiteSchema"],
            path: "Tests/TestSupport"),
        .testTarget(name: "KernelTests", dependencies: ["DenseKitKernels", "TestSupport"]),
        .testTarget(name: "ImportTests", dependencies: libraryTargets + ["TestSupport"]),
        .testTarget(name: "ValidationTests", dependencies: libraryTargets + ["TestSupport"]),
        .testTarget(name: "VerifyTests", dependencies: libraryTargets + ["TestSupport"]),
        .testTarget(name: "ExecuteTests", dependencies: libraryTargets + ["TestSupport"]),
        .testTarget(name: "NativeTests", dependencies: libraryTargets + ["TestSupport"]),
        .testTarget(name: "DiffTests", dependencies: libraryTargets + ["TestSupport"]),
        .testTarget(name: "ConvertTests", dependencies: libraryTargets + ["TestSupport"]),
        .testTarget(name: "CLITests", dependencies: libraryTargets + ["TestSupport", "densekit"]),
    ],
    swiftLanguageModes: [.v6],
    cxxLanguageStandard: .cxx17
)
