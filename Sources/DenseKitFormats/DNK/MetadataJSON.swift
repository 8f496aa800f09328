import Foundation

/// A strict JSON parser (RFC 8259) for a `.dnk` file's metadata, giving native Swift values:
/// objects as `[String: Any]`, arrays as `[Any]`, strings as `String`, integers that fit as `Int`,
/// other numbers as `Double`, `true`/`false` as `Bool` and `null` as `NSNull` (as JSONSerialization gives it).
///
/// Why not JSONSerialization: the metadata is on the critical path of opening a `.dnk`, and on Linux
/// JSONSerialization took 0.9 to 1.4 ms of DenseNet-121's 10.5 KB, its bridged NSNumber and NSArray
/// values another 0.3 ms of dynamic casts in the graph rebuild; JSONDecoder was no faster. This parser
/// takes 0.36 ms, and the rebuild from its values 0.45 ms instead of 1.0 to 1.2 (the CPU:
/// docs/performance.md). The file's checksum does not make the text trustworthy, so nesting is
/// limited and every malformed input is an error, never a trap.
public enum MetadataJSON {
    public static let maximumDepth = 64

    /// Where the text stops being JSON (a byte offset) and why.
    public struct Failure: Error {
        public let offset: Int, problem: String
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer) throws -> Any {
        var parser = Parser(bytes: bytes)
        parser.skipSpace()
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.at == bytes.count else { throw Failure(offset: parser.at, problem: "trailing characters") }
        return value
    }

    private struct Parser {
        let bytes: UnsafeRawBufferPointer
        var at = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        func fail(_ problem: String) -> Failure { Failure(offset: at, problem: problem) }

        var current: UInt8? { at < bytes.count ? bytes[at] : nil }

        mutating func skipSpace() {
            while let c = current, c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { at += 1 }
        }

        mutating func expect(_ c: UInt8) throws {
            guard current == c else { throw fail("expected '\(Character(Unicode.Scalar(c)))'") }
            at += 1
        }

        mutating func value(depth: Int) throws -> Any {
            guard depth < MetadataJSON.maximumDepth else {
                throw fail("nested more than \(MetadataJSON.maximumDepth) deep")
            }
            switch current {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return try string()
            case UInt8(ascii: "t"):
                try literal("true")
                return true
            case UInt8(ascii: "f"):
                try literal("false")
                return false
            case UInt8(ascii: "n"):
                try literal("null")
                return NSNull()
            case let c? where c == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c):
                return try number()
            default: throw fail(current == nil ? "unexpected end" : "unexpected character")
            }
        }

        mutating func literal(_ word: StaticString) throws {
            let n = word.utf8CodeUnitCount
            guard at + n <= bytes.count, memcmp(bytes.baseAddress! + at, word.utf8Start, n) == 0 else {
                throw fail("bad literal")
            }
            at += n
        }

        mutating func object(depth: Int) throws -> [String: Any] {
            at += 1
            var out: [String: Any] = [:]
            skipSpace()
            if current == UInt8(ascii: "}") {
                at += 1
                return out
            }
            while true {
                skipSpace()
                guard current == UInt8(ascii: "\"") else { throw fail("expected a key") }
                let key = try string()
                skipSpace()
                try expect(UInt8(ascii: ":"))
                skipSpace()
                guard out.updateValue(try value(depth: depth + 1), forKey: key) == nil else {
                    throw fail("duplicate key '\(key)'")
                }
                skipSpace()
                if current == UInt8(ascii: ",") {
                    at += 1
                    continue
                }
                try expect(UInt8(ascii: "}"))
                return out
            }
        }

        mutating func array(depth: Int) throws -> [Any] {
            at += 1
            var out: [Any] = []
            skipSpace()
            if current == UInt8(ascii: "]") {
                at += 1
                return out
            }
            while true {
                skipSpace()
                out.append(try value(depth: depth + 1))
                skipSpace()
                if current == UInt8(ascii: ",") {
                    at += 1
                    continue
                }
                try expect(UInt8(ascii: "]"))
                return out
            }
        }

        mutating func string() throws -> String {
            at += 1
            let start = at
            // Fast path: no escapes.
            while let c = current, c != UInt8(ascii: "\""), c != UInt8(ascii: "\\") {
                guard c >= 0x20 else { throw fail("control character in a string") }
                at += 1
            }
            guard let c = current else { throw fail("unterminated string") }
            var utf8 = Array(bytes[start..<at])
            if c == UInt8(ascii: "\\") {
                while let c = current, c != UInt8(ascii: "\"") {
                    guard c >= 0x20 else { throw fail("control character in a string") }
                    at += 1
                    guard c == UInt8(ascii: "\\") else {
                        utf8.append(c)
                        continue
                    }
                    guard let e = current else { throw fail("unterminated string") }
                    at += 1
                    switch e {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(e)
                    case UInt8(ascii: "b"): utf8.append(0x08)
                    case UInt8(ascii: "f"): utf8.append(0x0C)
                    case UInt8(ascii: "n"): utf8.append(0x0A)
                    case UInt8(ascii: "r"): utf8.append(0x0D)
                    case UInt8(ascii: "t"): utf8.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xD800..<0xDC00).contains(scalar) {
                            guard current == UInt8(ascii: "\\"), at + 1 < bytes.count,
                                bytes[at + 1] == UInt8(ascii: "u")
                            else { throw fail("lone surrogate") }
                            at += 2
                            let low = try hex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw fail("lone surrogate") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let u = Unicode.Scalar(scalar) else { throw fail("lone surrogate") }
                        utf8 += Array(String(Character(u)).utf8)
                    default: throw fail("bad escape")
                    }
                }
                guard current != nil else { throw fail("unterminated string") }
            }
            at += 1
            guard let s = String(validating: utf8, as: UTF8.self) else { throw fail("invalid UTF-8 in a string") }
            return s
        }

        mutating func hex4() throws -> UInt32 {
            guard at + 4 <= bytes.count else { throw fail("bad \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[at]
                let d: UInt8
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
                default: throw fail("bad \\u escape")
                }
                v = v << 4 | UInt32(d)
                at += 1
            }
            return v
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`; an Int when it has neither
        /// fraction nor exponent and fits, else a Double.
        mutating func number() throws -> Any {
            let start = at
            func digits() -> Int {
                let from = at
                while let c = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) { at += 1 }
                return at - from
            }
            if current == UInt8(ascii: "-") { at += 1 }
            let leading = current
            let whole = digits()
            guard whole > 0, leading != UInt8(ascii: "0") || whole == 1 else { throw fail("bad number") }
            var integral = true
            if current == UInt8(ascii: ".") {
                at += 1
                guard digits() > 0 else { throw fail("bad number") }
                integral = false
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                at += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { at += 1 }
                guard digits() > 0 else { throw fail("bad number") }
                integral = false
            }
            let text = String(decoding: bytes[start..<at], as: UTF8.self)
            if integral, let i = Int(text) { return i }
            guard let d = Double(text), d.isFinite else { throw fail("number out of range") }
            return d
        }
    }
}
