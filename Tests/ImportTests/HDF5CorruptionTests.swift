import DenseKit
import Foundation
import TestSupport
import Testing

/// Keras HDF5 files broken on purpose: a copy of a valid fixture is edited with libhdf5 (a dataset
/// replaced, removed or resized, a name list rewritten), so the file stays valid HDF5 and only the
/// model in it is wrong. Byte-level damage (truncation, flips) is in the CLI tests, which read HDF5
/// in an isolated process as every command does.
@Suite(.serialized) struct HDF5CorruptionTests {
    /// A copy of `fixture` edited by `edit` (given the open file), loaded; returns the error (nil if it loads).
    func loadError(_ fixture: String, _ edit: (HDF5Editing.Handle) throws -> Void) throws -> String? {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent((fixture as NSString).lastPathComponent).path
        try HDF5Editing.editedCopy(fixture, to: path, edit)
        do {
            _ = try ModelLoader.load(path: path)
            return nil
        } catch {
            return "\(error)"
        }
    }

    func expectError(
        _ fixture: String, _ contains: String, sourceLocation: SourceLocation = #_sourceLocation,
        _ edit: (HDF5Editing.Handle) throws -> Void
    ) throws {
        let error = try loadError(fixture, edit)
        #expect(error?.contains(contains) == true, "\(error ?? "loaded")", sourceLocation: sourceLocation)
    }

    let weightsOnly = "keras2-tiny-weights.h5"
    let stemKernel = "conv1/conv/conv1/conv/kernel:0"

    @Test func editedCopyStillLoads() throws {
        // The editing itself does not break the file: rewriting a dataset with its own shape loads.
        #expect(try loadError(weightsOnly) { _ in } == nil)
    }

    @Test func aDatasetClaimingTwoToTheFortyElementsIsRefusedWithoutAllocating() throws {
        try expectError(weightsOnly, "more than 2^31 values") {
            try HDF5Editing.replace($0, stemKernel, dims: [1 << 20, 1 << 20])
        }
        try expectError("keras3-tiny.weights.h5", "more than 2^31 values") {
            try HDF5Editing.replace($0, "layers/conv2d/vars/0", dims: [1 << 10, 1 << 10, 1 << 10, 1 << 10])
        }
    }

    @Test func wrongDimsAreNamedByLayer() throws {
        let bottleneck = "conv2_block1_1_conv/conv2_block1_1_conv/kernel:0"
        try expectError(
            weightsOnly,
            "layer 'conv2_block1_1_conv': kernel 'conv2_block1_1_conv/kernel:0': expected 8 input channels, found 9"
        ) { f in
            var d = try HDF5Editing.dims(f, bottleneck)
            d[2] += 1  // input channels
            try HDF5Editing.replace(f, bottleneck, dims: d)
        }
        try expectError(weightsOnly, "non-square kernel") { f in
            var d = try HDF5Editing.dims(f, stemKernel)
            d[0] += 1
            try HDF5Editing.replace(f, stemKernel, dims: d)
        }
    }

    @Test func missingDatasetsAndGroupsAreNamed() throws {
        try expectError(weightsOnly, "missing dataset 'conv1/conv/kernel:0'") {
            #expect(HDF5Editing.deleteLink($0, stemKernel))
        }
        try expectError(weightsOnly, "layer 'conv9/nothing' is listed but has no group") { f in
            try HDF5Editing.setStrings(f, "/", "layer_names", ["input_1", "conv1/conv", "conv9/nothing"])
        }
    }

    @Test func duplicateNamesAreRefused() throws {
        try expectError(weightsOnly, "layer 'conv1/conv' is listed twice") { f in
            try HDF5Editing.setStrings(f, "/", "layer_names", ["input_1", "conv1/conv", "conv1/bn", "conv1/conv"])
        }
        try expectError(weightsOnly, "layer 'conv1/conv' lists a weight twice") { f in
            try HDF5Editing.setStrings(f, "conv1/conv", "weight_names", ["conv1/conv/kernel:0", "conv1/conv/kernel:0"])
        }
        try expectError("keras3-tiny.weights.h5", "two layers are named 'conv1_conv'") { f in
            try HDF5Editing.setStrings(f, "layers/conv2d_1/vars", "name", ["conv1_conv"])
        }
    }
}
