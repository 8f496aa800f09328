import DenseKitFormats
import DenseKitGraph
import Foundation

/// Reads an image file, JPEG or PNG told by its signature, into RGB.
public enum ImageDecoder {
    /// Pillow's decompression-bomb limit (`Image.MAX_IMAGE_PIXELS`): a header that claims more is
    /// refused before anything is allocated.
    public static let maximumPixels = 89_478_485
    /// Files larger than this are not read (a photograph is a few megabytes).
    public static let maximumFileBytes = 1 << 30

    /// Opened once and checked to be a regular file (a FIFO would block) of at most
    /// `maximumFileBytes`, then read through that descriptor.
    public static func decode(path: String) throws -> RGBImage {
        let data: Data
        do {
            let (descriptor, size) = try RegularFile.open(path)
            defer { close(descriptor) }
            guard size <= maximumFileBytes else {
                throw ImageError.unreadable(
                    "\(size) bytes is larger than the \(maximumFileBytes)-byte limit for an image")
            }
            data = try RegularFile.read(descriptor, size: size)
        } catch let error as ImportError {
            throw ImageError.unreadable(error.description)
        }
        return try decode(data)
    }

    /// `maximumPixels`: a lower cap for callers that want one (the fuzz targets).
    public static func decode(_ data: Data, maximumPixels: Int = maximumPixels) throws -> RGBImage {
        guard !data.isEmpty else { throw ImageError.notAnImage(firstBytes: "") }
        if data.starts(with: [0xFF, 0xD8, 0xFF]) { return try JPEGDecoder.decode(data, maximumPixels: maximumPixels) }
        if data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            return try PNGDecoder.decode(data, maximumPixels: maximumPixels)
        }
        throw ImageError.notAnImage(
            firstBytes: data.prefix(4).map { String(format: "%02x", $0) }.joined(separator: " "))
    }

    package static func checkSize(_ width: Int, _ height: Int, _ maximum: Int) throws {
        guard width > 0, height > 0 else { throw ImageError.empty(width: width, height: height) }
        guard width.multipliedReportingOverflow(by: height).partialValue <= maximum, width <= maximum, height <= maximum
        else {
            throw ImageError.tooManyPixels(width: width, height: height, limit: maximum)
        }
    }

    /// The extensions a folder's images have.
    package static let extensions: Set<String> = ["jpg", "jpeg", "png"]

    /// The image files `path` stands for: itself if it is a file, a folder's images (by extension,
    /// in name order, named as the folder was) if it is one.
    public static func files(at path: String) throws -> [String] {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw ImageError.unreadable("no such file or folder")
        }
        guard isFolder.boolValue else { return [path] }
        return try FileManager.default.contentsOfDirectory(atPath: path)
            .filter { extensions.contains(URL(fileURLWithPath: $0).pathExtension.lowercased()) }
            .sorted()
            .map { path.hasSuffix("/") ? path + $0 : path + "/" + $0 }
    }
}
