// swift-tools-version:6.0
// libFuzzer targets for DenseKit's readers, built with coverage and AddressSanitizer by `make fuzz`
// (-sanitize=fuzzer,address on every module); kept out of the main package so that an ordinary
// build never needs the fuzzer runtime.
import PackageDescription

let package = Package(
    name: "DenseKitFuzz",
    dependencies: [.package(name: "DenseKit", path: "..")],
    targets: [.target(name: "FuzzSupport", dependencies: [.product(name: "DenseKit", package: "DenseKit")])]
        + [
            "FuzzONNX", "FuzzHDF5", "FuzzDNK", "FuzzNPY", "FuzzSafetensors", "FuzzTFLite", "FuzzPTH", "FuzzModuleTree",
            "FuzzJPEG", "FuzzPNG",
        ].map {
            .executableTarget(name: $0, dependencies: ["FuzzSupport", .product(name: "DenseKit", package: "DenseKit")])
        },
    swiftLanguageModes: [.v6]
)
