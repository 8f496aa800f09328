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
        var p: [UInt8] = [0x80, 0x02]
        func op(_ c: Character) { p.append(UInt8(ascii: c.unicodeScalars.first!)) }
        func string(_ s: String) {
            op("X")
            p += withUnsafeBytes(of: UInt32(s.utf8.count).littleEndian, Array.init) + Array(s.utf8)
        }
        func int(_ v: Int) {
            op("J")
            p += withUnsafeBytes(of: Int32(v).littleEndian, Array.init)
        }
        func global(_ module: String, _ name: String) {
            op("c")
            p += Array("\(module)\n\(name)\n".utf8)
        }
        func ints(_ v: [Int]) {
            op("(")
            v.forEach(int)
            op("t")
        }
        global("collections", "OrderedDict")
        op(")")
        op("R")
        op("(")
        let names = entries.keys.sorted()
        for (index, name) in names.enumerated() {
            let e = entries[name]!
            let (type, size) = storageTypes[e.dtype]!
            string(name)
            global("torch._utils", "_rebuild_tensor_v2")
            op("(")
            op("(")
            string("storage")
            global("torch", type)
            string("\(index)")
            string("cpu")
            int(e.bytes.count / size)
            op("t")
            op("Q")
            int(0)
            ints(e.shape)
            var stride = [Int](repeating: 1, count: e.shape.count)
            for i in stride.indices.dropLast().reversed() { stride[i] = stride[i + 1] * e.shape[i + 1] }
            ints(stride)
            p.append(0x89)
            global("collections", "OrderedDict")
            op(")")
            op("R")
            op("t")
            op("R")
        }
        op("u")
        op(".")
        let pickle = Data(p)
        switch format {
        case .zip:
            return ZipWriting.stored(
                [("archive/data.pkl", pickle), ("archive/byteorder", Data("little".utf8))]
                    + names.enumerated().map { ("archive/data/\($0.offset)", entries[$0.element]!.bytes) })
        case .legacy:
            var keys: [UInt8] = [0x80, 0x02, UInt8(ascii: "]"), UInt8(ascii: "(")]
            for i in names.indices {
                let k = "\(i)"
                keys +=
                    [UInt8(ascii: "X")] + withUnsafeBytes(of: UInt32(k.utf8.count).littleEndian, Array.init)
                    + Array(k.utf8)
            }
            keys += [UInt8(ascii: "e"), UInt8(ascii: ".")]
            var out = Data([0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E])
            out += Data([0x80, 0x02, 0x4D, 0xE9, 0x03, 0x2E]) + Data([0x80, 0x02, 0x7D, 0x2E]) + pickle + Data(keys)
            for name in names {
                let e = entries[name]!
                let size = storageTypes[e.dtype]!.1
                out += withUnsafeBytes(of: UInt64(e.bytes.count / size).littleEndian) { Data($0) } + e.bytes
            }
            return out
        }
    }
}
