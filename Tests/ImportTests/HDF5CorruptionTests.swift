import CHDF5
import DenseKit
import Foundation
import Testing
import TestSupport

/// Keras HDF5 files broken on purpose: a copy of a valid fixture is edited with libhdf5 (a dataset
/// replaced, removed or resized, a name list rewritten), so the file stays valid HDF5 and only the
/// model in it is wrong. Byte-level damage (truncation, flips) is in the CLI tests, which read HDF5
/// in an isolated process as every command does.
@Suite(.serialized) struct HDF5CorruptionTests {
    /// A copy of `fixture` edited by `edit` (given the open file), loaded; returns the error (nil if it loads).
    func loadError(_ fixture: String, _ edit: (hid_t) throws -> Void) throws -> String? {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent((fixture as NSString).lastPathComponent).path
        try FileManager.default.copyItem(atPath: Fixtures.path(fixture), toPath: path)
        let file = H5Fopen(path, dk_h5f_acc_rdwr(), dk_h5p_default())
        try #require(file >= 0, "cannot open \(path) for writing")
        try edit(file)
        #expect(H5Fclose(file) >= 0)
        do {
            _ = try ModelLoader.load(path: path)
            return nil
        } catch {
            return "\(error)"
        }
    }

    func expectError(_ fixture: String, _ contains: String, sourceLocation: SourceLocation = #_sourceLocation,
                     _ edit: (hid_t) throws -> Void) throws {
        let error = try loadError(fixture, edit)
        #expect(error?.contains(contains) == true, "\(error ?? "loaded")", sourceLocation: sourceLocation)
    }

    func dims(_ file: hid_t, _ path: String) throws -> [hsize_t] {
        let d = H5Dopen2(file, path, dk_h5p_default())
        try #require(d >= 0, "no dataset \(path)")
        defer { H5Dclose(d) }
        let space = H5Dget_space(d)
        defer { H5Sclose(space) }
        var dims = [hsize_t](repeating: 0, count: Int(H5Sget_simple_extent_ndims(space)))
        H5Sget_simple_extent_dims(space, &dims, nil)
        return dims
    }

    /// Replaces the dataset at `path` with a float32 one of shape `dims`: zeros, or, when it is too
    /// big to write, chunked and never allocated (HDF5 stores only the claim).
    func replace(_ file: hid_t, _ path: String, dims: [hsize_t]) throws {
        #expect(H5Ldelete(file, path, dk_h5p_default()) >= 0)
        let space = H5Screate_simple(Int32(dims.count), dims, nil)
        defer { H5Sclose(space) }
        let count = dims.reduce(1, *)
        let dcpl = H5Pcreate(dk_h5p_dataset_create())
        defer { H5Pclose(dcpl) }
        if count > 1 << 20 {
            let chunk = dims.map { _ in hsize_t(1) }
            H5Pset_chunk(dcpl, Int32(chunk.count), chunk)
        }
        let d = H5Dcreate2(file, path, dk_h5t_native_float(), space, dk_h5p_default(), dcpl, dk_h5p_default())
        try #require(d >= 0)
        defer { H5Dclose(d) }
        if count <= 1 << 20 {
            let zeros = [Float](repeating: 0, count: Int(count))
            #expect(H5Dwrite(d, dk_h5t_native_float(), dk_h5s_all(), dk_h5s_all(), dk_h5p_default(), zeros) >= 0)
        }
    }

    /// Rewrites a string-list attribute as fixed-length strings.
    func setStrings(_ file: hid_t, _ object: String, _ name: String, _ values: [String]) throws {
        if H5Aexists_by_name(file, object, name, dk_h5p_default()) > 0 {
            #expect(H5Adelete_by_name(file, object, name, dk_h5p_default()) >= 0)
        }
        let width = values.map(\.utf8.count).max() ?? 1
        let type = H5Tcopy(dk_h5t_c_s1())
        defer { H5Tclose(type) }
        H5Tset_size(type, width)
        var dims = [hsize_t(values.count)]
        let space = H5Screate_simple(1, &dims, nil)
        defer { H5Sclose(space) }
        let a = H5Acreate_by_name(file, object, name, type, space, dk_h5p_default(), dk_h5p_default(), dk_h5p_default())
        try #require(a >= 0)
        defer { H5Aclose(a) }
        var bytes = [UInt8](repeating: 0, count: width * values.count)
        for (i, v) in values.enumerated() { for (j, b) in v.utf8.enumerated() { bytes[i * width + j] = b } }
        #expect(H5Awrite(a, type, bytes) >= 0)
    }

    let weightsOnly = "keras2-tiny-weights.h5"
    let stemKernel = "conv1/conv/conv1/conv/kernel:0"

    @Test func editedCopyStillLoads() throws {
        // The editing itself does not break the file: rewriting a dataset with its own shape loads.
        #expect(try loadError(weightsOnly) { _ in } == nil)
    }

    @Test func aDatasetClaimingTwoToTheFortyElementsIsRefusedWithoutAllocating() throws {
        try expectError(weightsOnly, "more than 2^31 values") { try replace($0, stemKernel, dims: [1 << 20, 1 << 20]) }
        try expectError("keras3-tiny.weights.h5", "more than 2^31 values") { try replace($0, "layers/conv2d/vars/0", dims: [1 << 10, 1 << 10, 1 << 10, 1 << 10]) }
    }

    @Test func wrongDimsAreNamedByLayer() throws {
        let bottleneck = "conv2_block1_1_conv/conv2_block1_1_conv/kernel:0"
        try expectError(weightsOnly, "layer 'conv2_block1_1_conv': kernel expects") { f in
            var d = try dims(f, bottleneck)
            d[2] += 1  // input channels
            try replace(f, bottleneck, dims: d)
        }
        try expectError(weightsOnly, "non-square kernel") { f in
            var d = try dims(f, stemKernel)
            d[0] += 1
            try replace(f, stemKernel, dims: d)
        }
    }

    @Test func missingDatasetsAndGroupsAreNamed() throws {
        try expectError(weightsOnly, "missing dataset 'conv1/conv/kernel:0'") { #expect(H5Ldelete($0, stemKernel, dk_h5p_default()) >= 0) }
        try expectError(weightsOnly, "layer 'conv9/nothing' is listed but has no group") { f in
            try setStrings(f, "/", "layer_names", ["input_1", "conv1/conv", "conv9/nothing"])
        }
    }

    @Test func duplicateNamesAreRefused() throws {
        try expectError(weightsOnly, "layer 'conv1/conv' is listed twice") { f in
            try setStrings(f, "/", "layer_names", ["input_1", "conv1/conv", "conv1/bn", "conv1/conv"])
        }
        try expectError(weightsOnly, "layer 'conv1/conv' lists a weight twice") { f in
            try setStrings(f, "conv1/conv", "weight_names", ["conv1/conv/kernel:0", "conv1/conv/kernel:0"])
        }
        try expectError("keras3-tiny.weights.h5", "two layers are named 'conv1_conv'") { f in
            try setStrings(f, "layers/conv2d_1/vars", "name", ["conv1_conv"])
        }
    }
}
