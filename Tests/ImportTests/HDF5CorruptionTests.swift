import DenseKit
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// Keras HDF5 files broken on purpose: a copy of a valid fixture is edited with libhdf5 (a dataset
/// replaced, removed or resized, a name list rewritten), so the file stays valid HDF5 and only the
/// model in it is wrong. Byte-level damage (truncation, flips) is in the CLI tests, which read HDF5
/// in an isolated process as every command does.
@Suite(.serialized) struct HDF5CorruptionTests {
    /// A copy of `fixture` edited by `edit` (given the open file), loaded; returns the error (nil if it loads).
    func loadError(_ fixture: String, _ edit: (HDF5Editing.Handle) throws -> Void) throws -> ImportError? {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent((fixture as NSString).lastPathComponent).path
        try HDF5Editing.editedCopy(fixture, to: path, edit)
        do {
            _ = try ModelLoader.load(path: path)
            return nil
        } catch let error as ImportError {
            return error
        }
    }

    func expectError(
        _ fixture: String, _ expected: ImportError, sourceLocation: SourceLocation = #_sourceLocation,
        _ edit: (HDF5Editing.Handle) throws -> Void
    ) throws {
        let error = try loadError(fixture, edit)
        #expect(error == expected, sourceLocation: sourceLocation)
    }

    func tooLarge(_ dataset: String, _ shape: [Int]) -> ImportError {
        .mismatch(.entry(kind: "dataset", name: dataset), expected: "at most 2^31 values", found: "shape \(shape)")
    }

    let weightsOnly = "keras2-tiny-weights.h5"
    let stemKernel = "conv1/conv/conv1/conv/kernel:0"

    @Test func editedCopyStillLoads() throws {
        // The editing itself does not break the file: rewriting a dataset with its own shape loads.
        #expect(try loadError(weightsOnly) { _ in } == nil)
    }

    @Test func aDatasetClaimingTwoToTheFortyElementsIsRefusedWithoutAllocating() throws {
        try expectError(weightsOnly, tooLarge(stemKernel, [1 << 20, 1 << 20])) {
            try HDF5Editing.replace($0, stemKernel, dims: [1 << 20, 1 << 20])
        }
        try expectError(
            "keras3-tiny.weights.h5", tooLarge("layers/conv2d/vars/0", [1 << 10, 1 << 10, 1 << 10, 1 << 10])
        ) {
            try HDF5Editing.replace($0, "layers/conv2d/vars/0", dims: [1 << 10, 1 << 10, 1 << 10, 1 << 10])
        }
    }

    @Test func wrongDimsAreNamedByLayer() throws {
        let bottleneck = "conv2_block1_1_conv/conv2_block1_1_conv/kernel:0"
        try expectError(
            weightsOnly,
            .mismatch(
                .weight(of: .kerasLayer("conv2_block1_1_conv"), role: "kernel", name: "conv2_block1_1_conv/kernel:0"),
                expected: "8 input channels", found: "9")
        ) { f in
            var dims = try HDF5Editing.dims(f, bottleneck)
            dims[2] += 1  // input channels
            try HDF5Editing.replace(f, bottleneck, dims: dims)
        }
        try expectError(weightsOnly, .unsupported(.kerasLayer("conv1_conv"), problem: "non-square kernel [8, 7, 3, 8]"))
        { f in
            var dims = try HDF5Editing.dims(f, stemKernel)
            dims[0] += 1
            try HDF5Editing.replace(f, stemKernel, dims: dims)
        }
    }

    @Test func missingDatasetsAndGroupsAreNamed() throws {
        try expectError(
            weightsOnly, .malformed(.kerasLayer("conv1/conv"), problem: "missing dataset 'conv1/conv/kernel:0'")
        ) {
            #expect(HDF5Editing.deleteLink($0, stemKernel))
        }
        try expectError(weightsOnly, .malformed(.kerasLayer("conv9/nothing"), problem: "is listed but has no group")) {
            f in
            try HDF5Editing.setStrings(f, "/", "layer_names", ["input_1", "conv1/conv", "conv9/nothing"])
        }
    }

    @Test func duplicateNamesAreRefused() throws {
        try expectError(weightsOnly, .malformed(.kerasLayer("conv1/conv"), problem: "is listed twice")) { f in
            try HDF5Editing.setStrings(f, "/", "layer_names", ["input_1", "conv1/conv", "conv1/bn", "conv1/conv"])
        }
        try expectError(weightsOnly, .malformed(.kerasLayer("conv1/conv"), problem: "lists a weight twice")) { f in
            try HDF5Editing.setStrings(f, "conv1/conv", "weight_names", ["conv1/conv/kernel:0", "conv1/conv/kernel:0"])
        }
        try expectError(
            "keras3-tiny.weights.h5", .malformed(.kerasLayer("conv1_conv"), problem: "two layers have this name")
        ) { f in
            try HDF5Editing.setStrings(f, "layers/conv2d_1/vars", "name", ["conv1_conv"])
        }
    }
}
