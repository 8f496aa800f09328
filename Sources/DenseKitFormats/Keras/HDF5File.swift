import CHDF5
import DenseKitGraph
import Foundation

/// The one place that touches libhdf5 (with `HDF5Writer` below): a read-only HDF5 file (on disk or in memory), with
/// just the
/// reads the Keras importer needs. Every C status goes through `check`, which turns a negative
/// result into `ImportError` quoting HDF5's own message. HDF5 never prints anything itself.
///
/// The system libhdf5 is built without thread safety: every use of it goes through `serialized`.
package final class HDF5File {
    private static let lock = NSLock()
    nonisolated(unsafe) static var images = 0

    /// Runs `body` (which must open, read and release its files) while no other thread uses HDF5.
    package static func serialized<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    private let id: hid_t
    /// Per-dataset element cap (2^31): a file that claims more is refused before anything is allocated.
    package static let maximumElements = 1 << 31

    /// The HDF5 signature every file starts with (at offset 0 for the files Keras writes).
    package static let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]

    package init(path: String) throws {
        Self.silence()
        id = try Self.check(H5Fopen(path, dk_h5f_acc_rdonly(), dk_h5p_default()), "cannot open as HDF5")
    }

    /// Opens an HDF5 image held in memory (the weights inside a `.keras` archive).
    package init(image: Data) throws {
        Self.silence()
        let fapl = try Self.check(H5Pcreate(dk_h5p_file_access()), "cannot create file access properties")
        defer { H5Pclose(fapl) }
        _ = try Self.check(H5Pset_fapl_core(fapl, 1 << 16, false), "cannot select the in-memory driver")
        _ = try image.withUnsafeBytes { raw in
            try Self.check(
                H5Pset_file_image(fapl, UnsafeMutableRawPointer(mutating: raw.baseAddress), raw.count),
                "cannot load the in-memory image")
        }
        // HDF5 recognises an already open file by name: every image gets its own.
        Self.images += 1
        id = try Self.check(
            H5Fopen("densekit-image-\(Self.images).h5", dk_h5f_acc_rdonly(), fapl), "cannot open as HDF5")
    }

    deinit { H5Fclose(id) }

    // MARK: structure

    package enum Kind { case group, dataset, other }

    /// Whether `path` names an object (every intermediate group must exist).
    package func exists(_ path: String) -> Bool {
        var prefix = ""
        for part in path.split(separator: "/") {
            prefix += (prefix.isEmpty ? "" : "/") + part
            if H5Lexists(id, prefix, dk_h5p_default()) <= 0 { return false }
        }
        return true
    }

    package func kind(_ path: String) throws -> Kind {
        let object = try Self.check(H5Oopen(id, path, dk_h5p_default()), "cannot open '\(path)'")
        defer { H5Oclose(object) }
        switch H5Iget_type(object) {
        case H5I_GROUP: return .group
        case H5I_DATASET: return .dataset
        default: return .other
        }
    }

    /// Names of a group's members, in name order.
    package func children(_ path: String) throws -> [String] {
        var info = H5G_info_t()
        _ = try Self.check(H5Gget_info_by_name(id, path, &info, dk_h5p_default()), "cannot list group '\(path)'")
        guard info.nlinks < 1 << 20 else { throw ImportError.malformed("group '\(path)' has \(info.nlinks) members") }
        return try (0..<info.nlinks).map { i in
            let length = try Self.check(
                H5Lget_name_by_idx(id, path, H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, dk_h5p_default()),
                "cannot read a member name of '\(path)'")
            guard length < 1 << 16 else { throw ImportError.malformed("member name of \(length) bytes in '\(path)'") }
            var buffer = [CChar](repeating: 0, count: Int(length) + 1)
            _ = try Self.check(
                H5Lget_name_by_idx(id, path, H5_INDEX_NAME, H5_ITER_INC, i, &buffer, buffer.count, dk_h5p_default()),
                "cannot read a member name of '\(path)'")
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    // MARK: attributes

    /// A string (or array of strings) attribute, fixed- or variable-length; nil when absent.
    package func stringAttribute(_ object: String, _ name: String) throws -> [String]? {
        guard H5Aexists_by_name(id, object, name, dk_h5p_default()) > 0 else { return nil }
        let attribute = try Self.check(
            H5Aopen_by_name(id, object, name, dk_h5p_default(), dk_h5p_default()),
            "cannot open attribute '\(name)' of '\(object)'")
        defer { H5Aclose(attribute) }
        let type = try Self.check(H5Aget_type(attribute), "cannot read the type of attribute '\(name)'")
        defer { H5Tclose(type) }
        let space = try Self.check(H5Aget_space(attribute), "cannot read the shape of attribute '\(name)'")
        defer { H5Sclose(space) }
        let count = Int(H5Sget_simple_extent_npoints(space))
        guard count >= 0, count < 1 << 20 else {
            throw ImportError.malformed("attribute '\(name)' of '\(object)' has \(count) values")
        }
        // h5py writes an empty list (a layer without weights) as an empty float array.
        if count == 0 { return [] }
        guard H5Tget_class(type) == H5T_STRING else {
            throw ImportError.malformed("attribute '\(name)' of '\(object)' is not a string")
        }
        if H5Tis_variable_str(type) > 0 {
            let memory = try Self.check(H5Tcopy(dk_h5t_c_s1()), "cannot create a string type")
            defer { H5Tclose(memory) }
            H5Tset_size(memory, dk_h5t_variable())
            H5Tset_cset(memory, H5Tget_cset(type))
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: max(count, 1))
            _ = try Self.check(H5Aread(attribute, memory, &pointers), "cannot read attribute '\(name)' of '\(object)'")
            let strings = pointers.prefix(count).map { $0.map { String(cString: $0) } ?? "" }
            H5Dvlen_reclaim(memory, space, dk_h5p_default(), &pointers)
            return strings
        }
        let size = H5Tget_size(type)
        guard size > 0, size < 1 << 24, count * size < 1 << 28 else {
            throw ImportError.malformed("attribute '\(name)' of '\(object)' has strings of \(size) bytes")
        }
        var bytes = [UInt8](repeating: 0, count: count * size + 1)
        _ = try Self.check(H5Aread(attribute, type, &bytes), "cannot read attribute '\(name)' of '\(object)'")
        return (0..<count).map { i in
            let slice = bytes[(i * size)..<((i + 1) * size)]
            return String(decoding: slice.prefix { $0 != 0 }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
        }
    }

    // MARK: datasets

    /// A floating-point dataset read as float32 (HDF5 converts float16 and float64), with its shape
    /// and the dtype it is stored in; nil for a single integer (Keras's Normalization stores its sample
    /// `count` so; it plays no part in inference). Anything else that is not floating-point is an error.
    package func floatDataset(_ path: String) throws -> (shape: [Int], dtype: DType, values: [Float])? {
        let dataset = try Self.check(H5Dopen2(id, path, dk_h5p_default()), "cannot open dataset '\(path)'")
        defer { H5Dclose(dataset) }
        let type = try Self.check(H5Dget_type(dataset), "cannot read the type of '\(path)'")
        defer { H5Tclose(type) }
        let space = try Self.check(H5Dget_space(dataset), "cannot read the shape of '\(path)'")
        defer { H5Sclose(space) }
        if H5Tget_class(type) == H5T_INTEGER && H5Sget_simple_extent_npoints(space) == 1 { return nil }
        guard H5Tget_class(type) == H5T_FLOAT else {
            throw ImportError.malformed(.entry(kind: "dataset", name: path), problem: "is not floating-point")
        }
        let size = H5Tget_size(type)
        let rank = Int(H5Sget_simple_extent_ndims(space))
        guard rank >= 0, rank <= 8 else {
            throw ImportError.malformed(.entry(kind: "dataset", name: path), problem: "has rank \(rank)")
        }
        var dims = [hsize_t](repeating: 0, count: max(rank, 1))
        _ = try Self.check(H5Sget_simple_extent_dims(space, &dims, nil), "cannot read the shape of '\(path)'")
        var count = 1
        for d in dims.prefix(rank) {
            let (product, overflow) = count.multipliedReportingOverflow(by: Int(clamping: d))
            guard !overflow, product <= Self.maximumElements else {
                throw ImportError.mismatch(
                    .entry(kind: "dataset", name: path), expected: "at most 2^31 values",
                    found: "shape \(dims.prefix(rank).map { $0 })")
            }
            count = product
        }
        // The claim is checked against what the file stores before anything is allocated: Keras writes
        // every weight uncompressed, and even a compressed dataset does not shrink 64-fold; so a small
        // corrupt file cannot make this process (or libhdf5, converting) allocate gigabytes.
        guard size == 2 || size == 4 || size == 8 else {
            throw ImportError.mismatch(
                .entry(kind: "dataset", name: path), expected: "2-, 4- or 8-byte floats",
                found: "\(size)-byte floats")
        }
        let claimed = UInt64(count) * UInt64(size)
        let stored = UInt64(H5Dget_storage_size(dataset))
        guard claimed / 64 <= max(stored, 1 << 14) else {  // divided, not multiplied: `stored` comes from the file
            throw ImportError.mismatch(
                .entry(kind: "dataset", name: path), expected: "at most 64 times the \(stored) bytes it stores",
                found: "shape \(dims.prefix(rank).map { $0 }), \(claimed) bytes")
        }
        var values = [Float](repeating: 0, count: count)
        if count > 0 {
            _ = try Self.check(
                H5Dread(dataset, dk_h5t_native_float(), dk_h5s_all(), dk_h5s_all(), dk_h5p_default(), &values),
                "cannot read dataset '\(path)'")
        }
        let dtype: DType = size == 2 ? (H5Tget_ebias(type) == 127 ? .bf16 : .f16) : .f32
        return (dims.prefix(rank).map { Int($0) }, dtype, values)
    }

    // MARK: errors

    package static func silence() {
        H5Eset_auto2(dk_h5e_default(), nil, nil)
    }

    /// Turns a negative HDF5 status into an error quoting the innermost message on HDF5's error stack.
    @discardableResult
    package static func check<T: BinaryInteger>(_ status: T, _ what: String) throws -> T {
        guard status < 0 else { return status }
        let messages = ErrorMessages()
        let walker: H5E_walk2_t = { _, error, data in
            if let error, let data, let description = error.pointee.desc {
                Unmanaged<ErrorMessages>.fromOpaque(data).takeUnretainedValue().list.append(
                    String(cString: description))
            }
            return 0
        }
        H5Ewalk2(dk_h5e_default(), H5E_WALK_DOWNWARD, walker, Unmanaged.passUnretained(messages).toOpaque())
        H5Eclear2(dk_h5e_default())
        let detail = messages.list.last.map { " (HDF5: \($0))" } ?? ""
        throw ImportError.malformed(what + detail)
    }
}

/// Collects the descriptions on HDF5's error stack (filled by a C callback).
private final class ErrorMessages {
    var list: [String] = []
}

/// The writing half of the libhdf5 boundary: builds an HDF5 file in memory (the core driver, no
/// file on disk) with the groups, attributes and float32 datasets Keras's weight files hold, then
/// hands back its bytes. Attributes are written as h5py writes them: string lists as fixed-length
/// byte strings (numpy's `S` dtype), a single string as a variable-length UTF-8 scalar, an empty
/// list as an empty float64 array.
package final class HDF5Writer {
    private let id: hid_t
    private let linkProperties: hid_t

    package init() throws {
        HDF5File.silence()
        let fapl = try HDF5File.check(H5Pcreate(dk_h5p_file_access()), "cannot create file access properties")
        defer { H5Pclose(fapl) }
        _ = try HDF5File.check(H5Pset_fapl_core(fapl, 1 << 20, false), "cannot select the in-memory driver")
        HDF5File.images += 1
        id = try HDF5File.check(
            H5Fcreate("densekit-write-\(HDF5File.images).h5", dk_h5f_acc_trunc(), dk_h5p_default(), fapl),
            "cannot create an HDF5 file in memory")
        linkProperties = try HDF5File.check(H5Pcreate(dk_h5p_link_create()), "cannot create link properties")
        _ = try HDF5File.check(
            H5Pset_create_intermediate_group(linkProperties, 1), "cannot set intermediate group creation")
    }

    deinit {
        H5Pclose(linkProperties)
        H5Fclose(id)
    }

    /// Creates the group at `path` (and any missing groups above it).
    package func group(_ path: String) throws {
        guard !exists(path) else { return }
        let groupID = try HDF5File.check(
            H5Gcreate2(id, path, linkProperties, dk_h5p_default(), dk_h5p_default()), "cannot create group '\(path)'")
        H5Gclose(groupID)
    }

    private func exists(_ path: String) -> Bool {
        var prefix = ""
        for part in path.split(separator: "/") {
            prefix += (prefix.isEmpty ? "" : "/") + part
            if H5Lexists(id, prefix, dk_h5p_default()) <= 0 { return false }
        }
        return true
    }

    /// A float32 dataset (little-endian, contiguous) of `shape` holding `values` in C order.
    package func dataset(_ path: String, shape: [Int], values: [Float]) throws {
        let dims = shape.map { hsize_t($0) }
        let space = try HDF5File.check(
            H5Screate_simple(Int32(dims.count), dims, nil), "cannot create the shape of '\(path)'")
        defer { H5Sclose(space) }
        let datasetID = try HDF5File.check(
            H5Dcreate2(id, path, dk_h5t_ieee_f32le(), space, linkProperties, dk_h5p_default(), dk_h5p_default()),
            "cannot create dataset '\(path)'")
        defer { H5Dclose(datasetID) }
        if !values.isEmpty {
            _ = try HDF5File.check(
                H5Dwrite(datasetID, dk_h5t_native_float(), dk_h5s_all(), dk_h5s_all(), dk_h5p_default(), values),
                "cannot write dataset '\(path)'")
        }
    }

    /// A list of strings as fixed-length byte strings, padded with NULs to the longest; an empty
    /// list as an empty float64 array. `scalar`: one string, as a scalar (h5py's for `bytes`).
    package func stringsAttribute(_ object: String, _ name: String, _ values: [String], scalar: Bool = false) throws {
        let length = values.map(\.utf8.count).max() ?? 0
        guard length > 0 else {
            let space = try HDF5File.check(H5Screate_simple(1, [0], nil), "cannot create an empty shape")
            defer { H5Sclose(space) }
            try attribute(object, name, type: dk_h5t_ieee_f64le(), space: space) { a in
                try HDF5File.check(H5Awrite(a, dk_h5t_native_double(), [Double]()), "cannot write attribute '\(name)'")
            }
            return
        }
        let type = try HDF5File.check(H5Tcopy(dk_h5t_c_s1()), "cannot create a string type")
        defer { H5Tclose(type) }
        H5Tset_size(type, length)
        H5Tset_strpad(type, H5T_STR_NULLPAD)
        var bytes = [UInt8](repeating: 0, count: length * values.count)
        for (i, v) in values.enumerated() {
            bytes.replaceSubrange((i * length)..<(i * length + v.utf8.count), with: Array(v.utf8))
        }
        let space = try HDF5File.check(
            scalar && values.count == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, [hsize_t(values.count)], nil),
            "cannot create the shape of attribute '\(name)'")
        defer { H5Sclose(space) }
        try attribute(object, name, type: type, space: space) { a in
            try HDF5File.check(H5Awrite(a, type, bytes), "cannot write attribute '\(name)'")
        }
    }

    /// One string as a variable-length UTF-8 scalar (what h5py writes for a Python `str`).
    package func stringAttribute(_ object: String, _ name: String, _ value: String) throws {
        let type = try HDF5File.check(H5Tcopy(dk_h5t_c_s1()), "cannot create a string type")
        defer { H5Tclose(type) }
        H5Tset_size(type, dk_h5t_variable())
        H5Tset_cset(type, H5T_CSET_UTF8)
        let space = try HDF5File.check(H5Screate(H5S_SCALAR), "cannot create a scalar shape")
        defer { H5Sclose(space) }
        try attribute(object, name, type: type, space: space) { a in
            try value.withCString { chars in
                var pointer: UnsafePointer<CChar>? = chars
                try HDF5File.check(H5Awrite(a, type, &pointer), "cannot write attribute '\(name)'")
            }
        }
    }

    private func attribute(_ object: String, _ name: String, type: hid_t, space: hid_t, write: (hid_t) throws -> Void)
        throws
    {
        let attributeID = try HDF5File.check(
            H5Acreate_by_name(id, object, name, type, space, dk_h5p_default(), dk_h5p_default(), dk_h5p_default()),
            "cannot create attribute '\(name)' of '\(object)'")
        defer { H5Aclose(attributeID) }
        try write(attributeID)
    }

    /// The file's bytes.
    package func image() throws -> Data {
        _ = try HDF5File.check(H5Fflush(id, H5F_SCOPE_GLOBAL), "cannot flush the file")
        let size = try HDF5File.check(H5Fget_file_image(id, nil, 0), "cannot size the file image")
        var data = Data(count: Int(size))
        _ = try data.withUnsafeMutableBytes {
            try HDF5File.check(H5Fget_file_image(id, $0.baseAddress, Int(size)), "cannot copy the file image")
        }
        return data
    }
}
