import CHDF5
import Foundation

/// Edits of Keras HDF5 fixtures through libhdf5 (a dataset replaced or added, an attribute
/// rewritten), so the file stays valid HDF5 and only the model in it is wrong.
public enum HDF5Editing {
    /// An open libhdf5 file or object, as the edits take it (the tests need not import libhdf5).
    public typealias Handle = hid_t

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Copies `fixture` (a name in fixtures/, or an absolute path) to `path` and applies `edit` to
    /// the copy, opened for writing.
    public static func editedCopy(_ fixture: String, to path: String, _ edit: (hid_t) throws -> Void) throws {
        try? FileManager.default.removeItem(atPath: path)
        try FileManager.default.copyItem(
            atPath: fixture.hasPrefix("/") ? fixture : Fixtures.path(fixture), toPath: path)
        let file = H5Fopen(path, dk_h5f_acc_rdwr(), dk_h5p_default())
        guard file >= 0 else { throw Failure(description: "cannot open \(path) for writing") }
        defer { H5Fclose(file) }
        try edit(file)
    }

    public static func dims(_ file: hid_t, _ path: String) throws -> [hsize_t] {
        let datasetID = H5Dopen2(file, path, dk_h5p_default())
        guard datasetID >= 0 else { throw Failure(description: "no dataset \(path)") }
        defer { H5Dclose(datasetID) }
        let space = H5Dget_space(datasetID)
        defer { H5Sclose(space) }
        var dims = [hsize_t](repeating: 0, count: Int(H5Sget_simple_extent_ndims(space)))
        H5Sget_simple_extent_dims(space, &dims, nil)
        return dims
    }

    /// Writes a float32 dataset of shape `dims` at `path` (replacing any there): `fill`, or, when it
    /// is too big to write, chunked and never allocated (HDF5 stores only the claim).
    public static func replace(_ file: hid_t, _ path: String, dims: [hsize_t], fill: Float = 0) throws {
        if H5Lexists(file, path, dk_h5p_default()) > 0, H5Ldelete(file, path, dk_h5p_default()) < 0 {
            throw Failure(description: "cannot delete \(path)")
        }
        let space = H5Screate_simple(Int32(dims.count), dims, nil)
        defer { H5Sclose(space) }
        let count = dims.reduce(1, *)
        let dcpl = H5Pcreate(dk_h5p_dataset_create())
        defer { H5Pclose(dcpl) }
        if count > 1 << 20 {
            let chunk = dims.map { _ in hsize_t(1) }
            H5Pset_chunk(dcpl, Int32(chunk.count), chunk)
        }
        let datasetID = H5Dcreate2(file, path, dk_h5t_native_float(), space, dk_h5p_default(), dcpl, dk_h5p_default())
        guard datasetID >= 0 else { throw Failure(description: "cannot create \(path)") }
        defer { H5Dclose(datasetID) }
        if count <= 1 << 20 {
            let values = [Float](repeating: fill, count: Int(count))
            guard H5Dwrite(datasetID, dk_h5t_native_float(), dk_h5s_all(), dk_h5s_all(), dk_h5p_default(), values) >= 0
            else {
                throw Failure(description: "cannot write \(path)")
            }
        }
    }

    /// Rewrites a string attribute as a list of fixed-length strings.
    public static func setStrings(_ file: hid_t, _ object: String, _ name: String, _ values: [String]) throws {
        if H5Aexists_by_name(file, object, name, dk_h5p_default()) > 0,
            H5Adelete_by_name(file, object, name, dk_h5p_default()) < 0
        {
            throw Failure(description: "cannot delete attribute \(name) of \(object)")
        }
        let width = max(values.map(\.utf8.count).max() ?? 1, 1)
        let type = H5Tcopy(dk_h5t_c_s1())
        defer { H5Tclose(type) }
        H5Tset_size(type, width)
        var dims = [hsize_t(values.count)]
        let space = H5Screate_simple(1, &dims, nil)
        defer { H5Sclose(space) }
        let attributeID = H5Acreate_by_name(
            file, object, name, type, space, dk_h5p_default(), dk_h5p_default(), dk_h5p_default())
        guard attributeID >= 0 else { throw Failure(description: "cannot create attribute \(name) of \(object)") }
        defer { H5Aclose(attributeID) }
        var bytes = [UInt8](repeating: 0, count: width * values.count)
        for (i, v) in values.enumerated() { for (j, b) in v.utf8.enumerated() { bytes[i * width + j] = b } }
        guard H5Awrite(attributeID, type, bytes) >= 0 else {
            throw Failure(description: "cannot write attribute \(name) of \(object)")
        }
    }

    /// Reads a scalar or one-element variable-length string attribute (as h5py writes `model_config`).
    public static func string(_ file: hid_t, _ object: String, _ name: String) throws -> String {
        let attributeID = H5Aopen_by_name(file, object, name, dk_h5p_default(), dk_h5p_default())
        guard attributeID >= 0 else { throw Failure(description: "no attribute \(name) of \(object)") }
        defer { H5Aclose(attributeID) }
        let memory = H5Tcopy(dk_h5t_c_s1())
        defer { H5Tclose(memory) }
        H5Tset_size(memory, dk_h5t_variable())
        var pointer: UnsafeMutablePointer<CChar>? = nil
        guard H5Aread(attributeID, memory, &pointer) >= 0, let pointer else {
            throw Failure(description: "cannot read \(name) of \(object)")
        }
        defer { free(pointer) }
        return String(cString: pointer)
    }

    /// Edits the Keras model config (the root `model_config` JSON): `edit` gets each layer's
    /// `config` by layer name.
    public static func editConfig(_ file: hid_t, _ edit: (String, inout [String: Any]) -> Void) throws {
        try editLayers(file) { entry in
            guard var layerConfig = entry["config"] as? [String: Any], let name = layerConfig["name"] as? String else {
                return
            }
            edit(name, &layerConfig)
            entry["config"] = layerConfig
        }
    }

    /// Edits each layer entry of the Keras model config (`class_name`, `config`, `inbound_nodes`).
    public static func editLayers(_ file: hid_t, _ edit: (inout [String: Any]) -> Void) throws {
        let text = try string(file, "/", "model_config")
        guard var root = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            var config = root["config"] as? [String: Any], var layers = config["layers"] as? [[String: Any]]
        else {
            throw Failure(description: "model_config is not a Keras functional config")
        }
        for i in layers.indices { edit(&layers[i]) }
        config["layers"] = layers
        root["config"] = config
        let json = String(decoding: try JSONSerialization.data(withJSONObject: root), as: UTF8.self)
        try setStrings(file, "/", "model_config", [json])
    }

    /// Deletes the link (dataset or group) at `path`; whether it was deleted.
    public static func deleteLink(_ file: Handle, _ path: String) -> Bool {
        H5Ldelete(file, path, dk_h5p_default()) >= 0
    }

    /// The names of the root group's attributes among `names` that exist in the file at `path`.
    public static func rootAttributes(_ names: [String], in path: String) throws -> [String] {
        let file = H5Fopen(path, dk_h5f_acc_rdonly(), dk_h5p_default())
        guard file >= 0 else { throw Failure(description: "cannot open \(path)") }
        defer { H5Fclose(file) }
        return names.filter { H5Aexists_by_name(file, "/", $0, dk_h5p_default()) > 0 }
    }
}
