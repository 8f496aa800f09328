import DenseKitGraph
import Foundation

/// A restricted unpickler for the pickles `torch.save` and `torch.jit.save` write: it builds values, and
/// never imports, calls or executes anything.
///
/// Only the opcodes a state_dict, a training checkpoint or a pickled module tree uses are read
/// (protocols 2 to 4: dicts, lists, tuples, sets, strings, numbers, booleans, None, the memo, MARK,
/// persistent ids for storages and, in the legacy format, module classes). A global is only a name:
/// a class named by NEWOBJ or `copyreg._reconstructor` gives an inert `object` that BUILD fills with
/// its state, and nothing is imported. The only calls are those DenseKit interprets itself (an
/// allow-list: `collections.OrderedDict`, `set`, `copyreg._reconstructor`, `torch._utils.
/// _rebuild_tensor_v2` and `_rebuild_parameter`, TorchScript's list builders); a REDUCE of anything
/// else (`posix.system`, `builtins.eval`, ...) is refused naming it, before anything else happens,
/// and so is a global left in the result as a value (`strayGlobal`). Caps: stack and memo sizes,
/// MARK depth, the nesting depth of every container (so that nothing built here is released by a
/// recursion deeper than the cap), and every length is checked against the bytes left.
package struct Unpickler {
    package indirect enum Value {
        case none
        case bool(Bool)
        case int(Int64)
        /// An integer too wide for 64 bits (torch's legacy magic number), as its little-endian bytes.
        case bigInt([UInt8])
        case float(Double)
        case string(String)
        case tuple([Value])
        case list([Value])
        case dict([(key: Value, value: Value)])
        /// A global by name: a class, or a callable that only an allowed REDUCE applies.
        case global(String)
        /// An instance of a class (by name, never imported): what NEWOBJ or `copyreg._reconstructor`
        /// made, with the state BUILD gave it (`none` before).
        case object(className: String, state: Value)
        /// A storage named by a persistent id: its element type (`FloatStorage`), key and element count.
        case storage(type: String, key: String, count: Int)
        /// A tensor view of a storage: element offset, size and stride.
        case tensor(storage: String, type: String, storageCount: Int, offset: Int, shape: [Int], stride: [Int])

        package var string: String? { if case .string(let text) = self { return text } else { return nil } }
        package var int: Int? {
            if case .int(let value) = self, let integer = Int(exactly: value) { return integer } else { return nil }
        }
        package var ints: [Int]? {
            guard case .tuple(let items) = self else { return nil }
            let values = items.compactMap(\.int)
            return values.count == items.count ? values : nil
        }
    }

    /// The storage types a persistent id names.
    package static let storageTypes: Set<String> = [
        "torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage", "torch.DoubleStorage",
        "torch.LongStorage", "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage", "torch.ByteStorage",
        "torch.BoolStorage",
    ]
    /// The callables a REDUCE may apply, each interpreted here (`reduce`), never called.
    package static let interpretedCalls: Set<String> = [
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
        "copyreg._reconstructor", "__builtin__.set", "builtins.set", "torch.jit._pickle.build_intlist",
        "torch.jit._pickle.build_doublelist", "torch.jit._pickle.build_boollist",
        "torch.jit._pickle.build_tensorlist", "torch.jit._pickle.build_stringlist",
    ]
    package static let maximumStack = 1 << 20, maximumMemo = 1 << 20, maximumMarks = 1 << 12
    /// How deeply containers may nest (a state_dict nests about 5 deep).
    package static let maximumDepth = 256

    /// A value on the stack or in the memo, with how deeply containers nest in it (0 for a leaf).
    private struct Entry {
        var value: Value
        var depth: Int
    }

    private let bytes: [UInt8]
    private var at: Int
    private var stack: [Entry] = []
    private var marks: [Int] = []
    private var memo: [Int: Entry] = [:]

    package init(_ data: Data, from offset: Int = 0) {
        bytes = [UInt8](data)
        at = offset
    }

    /// Where the next pickle starts (the legacy format is several pickles in a row).
    package var position: Int { at }

    private func fail(_ what: String) -> ImportError {
        ImportError.malformed(.pickle(byte: at), problem: what)
    }

    private mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.count - at else {
            throw fail("expected \(count) more bytes, found \(bytes.count - at)")
        }
        defer { at += count }
        return bytes[at..<(at + count)]
    }

    private mutating func uint(_ count: Int) throws -> UInt64 {
        try take(count).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    private mutating func line() throws -> String {
        guard let end = bytes[at...].firstIndex(of: 0x0A) else { throw fail("expected a newline-terminated name") }
        defer { at = end + 1 }
        return String(decoding: bytes[at..<end], as: UTF8.self)
    }

    /// Pushes a leaf (or an empty container).
    private mutating func push(_ element: Value) throws { try push(Entry(value: element, depth: 0)) }

    private mutating func push(_ entry: Entry) throws {
        guard stack.count < Self.maximumStack else { throw fail("more than \(Self.maximumStack) values on the stack") }
        stack.append(entry)
    }

    /// Pushes a container holding `items` (at least as deep as `depth` already).
    private mutating func push(_ container: Value, holding items: [Entry], depth: Int = 0) throws {
        let nested = max(depth, 1 + (items.map(\.depth).max() ?? 0))
        guard nested <= Self.maximumDepth else { throw fail("containers nested deeper than \(Self.maximumDepth)") }
        try push(Entry(value: container, depth: nested))
    }

    private mutating func pop() throws -> Entry {
        guard let entry = stack.popLast(), marks.last.map({ stack.count >= $0 }) ?? true else {
            throw fail("stack underflow")
        }
        return entry
    }

    private mutating func popMark() throws -> [Entry] {
        guard let mark = marks.popLast(), mark <= stack.count else { throw fail("no MARK") }
        defer { stack.removeSubrange(mark...) }
        return Array(stack[mark...])
    }

    /// The refusal of a global used as more than a class name.
    package static func refused(_ name: String) -> ImportError {
        ImportError.mismatch(
            .entry(kind: "pickle global", name: name),
            expected:
                """
                only the calls a checkpoint or a module tree uses \
                (\(interpretedCalls.sorted().prefix(3).joined(separator: ", ")), ...), and classes as names
                """,
            found: "another (nothing was executed: DenseKit never runs a pickle's code)")
    }

    /// The first global left in `value` as a value (not consumed as a class or an interpreted call): a
    /// pickle that hands over a function (`os.system` as an attribute) is refused even if nothing calls it.
    package static func strayGlobal(in value: Value) -> String? {
        switch value {
        case .global(let name): return storageTypes.contains(name) ? nil : name
        case .tuple(let items), .list(let items): return items.lazy.compactMap { strayGlobal(in: $0) }.first
        case .dict(let pairs):
            return pairs.lazy.compactMap { strayGlobal(in: $0.key) ?? strayGlobal(in: $0.value) }.first
        case .object(_, let state): return strayGlobal(in: state)
        default: return nil
        }
    }

    /// Reads the pickle of the saved object: `load`, then refused if a global is left in it as a value.
    package mutating func loadObject() throws -> Value {
        let object = try load()
        if let name = Self.strayGlobal(in: object) { throw Self.refused(name) }
        return object
    }

    /// Reads one pickle up to its STOP; `persistent` turns a persistent id into a value.
    package mutating func load() throws -> Value {
        while true {
            let op = try take(1).first!
            switch op {
            case 0x80: _ = try take(1)  // PROTO
            case 0x95: _ = try take(8)  // FRAME (protocol 4)
            case UInt8(ascii: "."): return try pop().value  // STOP
            case UInt8(ascii: "("):  // MARK
                guard marks.count < Self.maximumMarks else {
                    throw fail("MARKs nested deeper than \(Self.maximumMarks)")
                }
                marks.append(stack.count)
            case UInt8(ascii: "}"): try push(.dict([]))
            case UInt8(ascii: "]"): try push(.list([]))
            case UInt8(ascii: ")"): try push(.tuple([]))
            case UInt8(ascii: "t"):
                let items = try popMark()
                try push(.tuple(items.map(\.value)), holding: items)
            case 0x85:
                let first = try pop()
                try push(.tuple([first.value]), holding: [first])
            case 0x86:
                let second = try pop()
                let first = try pop()
                try push(.tuple([first.value, second.value]), holding: [first, second])
            case 0x87:
                let third = try pop()
                let second = try pop()
                let first = try pop()
                try push(.tuple([first.value, second.value, third.value]), holding: [first, second, third])
            case UInt8(ascii: "N"): try push(.none)
            case 0x88: try push(.bool(true))
            case 0x89: try push(.bool(false))
            case UInt8(ascii: "K"): try push(.int(Int64(try uint(1))))
            case UInt8(ascii: "M"): try push(.int(Int64(try uint(2))))
            case UInt8(ascii: "J"): try push(.int(Int64(Int32(truncatingIfNeeded: try uint(4)))))
            case 0x8A:  // LONG1
                let length = Int(try uint(1))
                let raw = try take(length)
                guard length <= 8 else {
                    try push(.bigInt(Array(raw)))
                    continue
                }
                var value: Int64 = raw.last.map { $0 & 0x80 != 0 ? -1 : 0 } ?? 0
                for b in raw.reversed() { value = value << 8 | Int64(b) }
                try push(.int(value))
            case UInt8(ascii: "G"):
                try push(.float(Double(bitPattern: try take(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) })))
            case UInt8(ascii: "X"): try push(.string(String(decoding: try take(Int(try uint(4))), as: UTF8.self)))
            case 0x8C: try push(.string(String(decoding: try take(Int(try uint(1))), as: UTF8.self)))
            case UInt8(ascii: "T"): try push(.string(String(decoding: try take(Int(try uint(4))), as: UTF8.self)))
            case UInt8(ascii: "U"): try push(.string(String(decoding: try take(Int(try uint(1))), as: UTF8.self)))
            case UInt8(ascii: "q"), UInt8(ascii: "r"), 0x94:  // BINPUT, LONG_BINPUT, MEMOIZE
                let key = op == 0x94 ? memo.count : Int(try uint(op == UInt8(ascii: "q") ? 1 : 4))
                guard memo.count < Self.maximumMemo, let top = stack.last else {
                    throw fail("memo full or empty stack")
                }
                memo[key] = top
            case UInt8(ascii: "h"), UInt8(ascii: "j"):  // BINGET, LONG_BINGET
                let key = Int(try uint(op == UInt8(ascii: "h") ? 1 : 4))
                guard let entry = memo[key] else { throw fail("memo key \(key) was never stored") }
                try push(entry)
            case UInt8(ascii: "c"): try push(.global(try line() + "." + (try line())))
            case 0x93:  // STACK_GLOBAL
                let name = try pop().value
                let module = try pop().value
                guard let nameText = name.string, let moduleText = module.string else {
                    throw fail("STACK_GLOBAL of non-strings")
                }
                try push(.global(moduleText + "." + nameText))
            case UInt8(ascii: "Q"):  // BINPERSID
                let pid = try pop().value
                // The legacy format names a module's class with its source: ('module', class, file, source).
                if case .tuple(let items) = pid, items.count == 4, items[0].string == "module",
                    case .global = items[1]
                {
                    try push(items[1])
                    continue
                }
                guard case .tuple(let items) = pid, items.count >= 5, items[0].string == "storage",
                    case .global(let type) = items[1], Self.storageTypes.contains(type), let key = items[2].string,
                    let count = items[4].int, count >= 0
                else {
                    throw fail("a persistent id that is not ('storage', type, key, location, count)")
                }
                try push(.storage(type: String(type.dropFirst("torch.".count)), key: key, count: count))
            case 0x81, 0x92:  // NEWOBJ, NEWOBJ_EX: an inert instance; the class is only a name
                if op == 0x92 { _ = try pop() }
                _ = try pop()
                guard case .global(let className) = try pop().value else {
                    throw fail("NEWOBJ of something not a class")
                }
                try push(.object(className: className, state: .none))
            case 0x8F: try push(.list([]))  // EMPTY_SET (a set is read as a list)
            case 0x90:  // ADDITEMS
                let items = try popMark()
                let target = try pop()
                guard case .list(var elements) = target.value else { throw fail("ADDITEMS on a non-set") }
                elements += items.map(\.value)
                try push(.list(elements), holding: items, depth: target.depth)
            case 0x91:  // FROZENSET
                let items = try popMark()
                try push(.list(items.map(\.value)), holding: items)
            case UInt8(ascii: "R"):  // REDUCE
                let args = try pop()
                let callable = try pop()
                try push(try reduce(callable.value, args.value), holding: [args])
            case UInt8(ascii: "b"):  // BUILD: an object's state; on anything else (OrderedDict._metadata) ignored
                let state = try pop()
                let target = try pop()
                if case .object(let className, _) = target.value {
                    try push(.object(className: className, state: state.value), holding: [state], depth: target.depth)
                } else {
                    try push(target)
                }
            case UInt8(ascii: "s"):
                let value = try pop()
                let key = try pop()
                let target = try pop()
                guard case .dict(var entries) = target.value else { throw fail("SETITEM on a non-dict") }
                entries.append((key.value, value.value))
                try push(.dict(entries), holding: [key, value], depth: target.depth)
            case UInt8(ascii: "u"):
                let items = try popMark()
                let target = try pop()
                guard items.count % 2 == 0, case .dict(var entries) = target.value else {
                    throw fail("SETITEMS on a non-dict")
                }
                for i in stride(from: 0, to: items.count, by: 2) {
                    entries.append((items[i].value, items[i + 1].value))
                }
                try push(.dict(entries), holding: items, depth: target.depth)
            case UInt8(ascii: "a"):
                let value = try pop()
                let target = try pop()
                guard case .list(var elements) = target.value else { throw fail("APPEND on a non-list") }
                elements.append(value.value)
                try push(.list(elements), holding: [value], depth: target.depth)
            case UInt8(ascii: "e"):
                let items = try popMark()
                let target = try pop()
                guard case .list(var elements) = target.value else { throw fail("APPENDS on a non-list") }
                elements += items.map(\.value)
                try push(.list(elements), holding: items, depth: target.depth)
            default:
                throw ImportError.mismatch(
                    .pickle(byte: at - 1), expected: "an opcode a state_dict uses",
                    found: "opcode 0x\(String(op, radix: 16)) (nothing was executed)")
            }
        }
    }

    /// What an allowed callable builds from its arguments (interpreted here, never called).
    private func reduce(_ callable: Value, _ args: Value) throws -> Value {
        guard case .global(let name) = callable else { throw fail("REDUCE of something that is not a global") }
        guard Self.interpretedCalls.contains(name) else { throw Self.refused(name) }
        guard case .tuple(let arguments) = args else { throw fail("REDUCE of '\(name)' without an argument tuple") }
        switch name {
        case "collections.OrderedDict":
            return .dict([])
        case "__builtin__.set", "builtins.set":
            guard arguments.isEmpty || arguments.count == 1 else { throw fail("set() of \(arguments.count) arguments") }
            if case .list(let items)? = arguments.first { return .list(items) }
            return .list([])
        case "copyreg._reconstructor":
            guard arguments.count == 3, case .global(let className) = arguments[0] else {
                throw fail("copyreg._reconstructor with arguments other than (class, base, state)")
            }
            return .object(className: className, state: .none)
        case "torch.jit._pickle.build_intlist", "torch.jit._pickle.build_doublelist",
            "torch.jit._pickle.build_boollist", "torch.jit._pickle.build_tensorlist",
            "torch.jit._pickle.build_stringlist":
            guard arguments.count == 1, case .list = arguments[0] else { throw fail("\(name) of something not a list") }
            return arguments[0]
        case "torch._utils._rebuild_tensor_v2":
            guard arguments.count >= 4, case .storage(let type, let key, let count) = arguments[0],
                let offset = arguments[1].int,
                let shape = arguments[2].ints, let stride = arguments[3].ints,
                offset >= 0, shape.count == stride.count, shape.allSatisfy({ $0 >= 0 })
            else {
                throw fail("_rebuild_tensor_v2 with arguments other than (storage, offset, size, stride, ...)")
            }
            return .tensor(storage: key, type: type, storageCount: count, offset: offset, shape: shape, stride: stride)
        case "torch._utils._rebuild_parameter":
            guard let first = arguments.first, case .tensor = first else {
                throw fail("_rebuild_parameter of something that is not a tensor")
            }
            return first
        default:
            throw Self.refused(name)
        }
    }
}
