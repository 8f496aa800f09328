import Foundation

/// `torch.save` files written by the tests, in both formats, from state_dict entries (taken from a
/// real file and changed): the pickle a state_dict of contiguous tensors pickles to, opcode by opcode.
public enum TorchSaveWriting {
    public enum Format { case zip, legacy }

    static let storageTypes = [
        "F32": ("FloatStorage", 4), "F16": ("HalfStorage", 2), "BF16": ("BFloat16Storage", 2),
        "I64": ("LongStorage", 8),
    ]

    public static func file(_ entries: [String: SafetensorsEditing.Entry], format: Format) -> Data {
        var bytes: [UInt8] = [0x80, 0x02]
        func op(_ opcode: Character) { bytes.append(UInt8(ascii: opcode.unicodeScalars.first!)) }
        func string(_ text: String) {
            op("X")
            bytes += withUnsafeBytes(of: UInt32(text.utf8.count).littleEndian, Array.init) + Array(text.utf8)
        }
        func int(_ value: Int) {
            op("J")
            bytes += withUnsafeBytes(of: Int32(value).littleEndian, Array.init)
        }
        func global(_ module: String, _ name: String) {
            op("c")
            bytes += Array("\(module)\n\(name)\n".utf8)
        }
        func ints(_ value: [Int]) {
            op("(")
            value.forEach(int)
            op("t")
        }
        global("collections", "OrderedDict")
        op(")")
        op("R")
        op("(")
        let names = entries.keys.sorted()
        for (index, name) in names.enumerated() {
            let entry = entries[name]!
            let (type, size) = storageTypes[entry.dtype]!
            string(name)
            global("torch._utils", "_rebuild_tensor_v2")
            op("(")
            op("(")
            string("storage")
            global("torch", type)
            string("\(index)")
            string("cpu")
            int(entry.bytes.count / size)
            op("t")
            op("Q")
            int(0)
            ints(entry.shape)
            var stride = [Int](repeating: 1, count: entry.shape.count)
            for i in stride.indices.dropLast().reversed() { stride[i] = stride[i + 1] * entry.shape[i + 1] }
            ints(stride)
            bytes.append(0x89)
            global("collections", "OrderedDict")
            op(")")
            op("R")
            op("t")
            op("R")
        }
        op("u")
        op(".")
        let pickle = Data(bytes)
        switch format {
        case .zip:
            return ZipWriting.stored(
                [("archive/data.pkl", pickle), ("archive/byteorder", Data("little".utf8))]
                    + names.enumerated().map { ("archive/data/\($0.offset)", entries[$0.element]!.bytes) })
        case .legacy:
            var keys: [UInt8] = [0x80, 0x02, UInt8(ascii: "]"), UInt8(ascii: "(")]
            for i in names.indices {
                let key = "\(i)"
                keys +=
                    [UInt8(ascii: "X")] + withUnsafeBytes(of: UInt32(key.utf8.count).littleEndian, Array.init)
                    + Array(key.utf8)
            }
            keys += [UInt8(ascii: "e"), UInt8(ascii: ".")]
            var out = Data([0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E])
            out += Data([0x80, 0x02, 0x4D, 0xE9, 0x03, 0x2E]) + Data([0x80, 0x02, 0x7D, 0x2E]) + pickle + Data(keys)
            for name in names {
                let entry = entries[name]!
                let size = storageTypes[entry.dtype]!.1
                out += withUnsafeBytes(of: UInt64(entry.bytes.count / size).littleEndian) { Data($0) } + entry.bytes
            }
            return out
        }
    }
}
