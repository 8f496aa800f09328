import DenseKit
import DenseKitFormats
import Foundation
import TestSupport
import Testing

/// The `.dnk` metadata parser: the values RFC 8259 gives, every malformed text refused at its byte,
/// and the same tree as Foundation's JSONSerialization on the metadata DenseKit writes.
@Suite struct MetadataJSONTests {
    func parse(_ text: String) throws -> Any { try parse(Array(text.utf8)) }
    func parse(_ bytes: [UInt8]) throws -> Any { try bytes.withUnsafeBytes { try MetadataJSON.parse($0) } }

    /// The failure for `bytes` as "<problem> at <offset>", or nil if they parsed.
    func failure(_ bytes: [UInt8]) -> String? {
        do {
            _ = try parse(bytes)
            return nil
        } catch {
            return (error as? MetadataJSON.Failure).map { "\($0.problem) at \($0.offset)" } ?? "\(error)"
        }
    }

    /// The same JSON tree: our native values against Foundation's bridged ones (numbers as Doubles).
    func same(_ a: Any, _ b: Any) -> Bool {
        switch a {
        case let a as [String: Any]:
            guard let b = b as? [String: Any], Set(a.keys) == Set(b.keys) else { return false }
            return a.allSatisfy { same($0.value, b[$0.key]!) }
        case let a as [Any]:
            guard let b = b as? [Any], a.count == b.count else { return false }
            return zip(a, b).allSatisfy { same($0, $1) }
        case let a as String: return b as? String == a
        case is NSNull: return b is NSNull
        case let a as Bool: return b as? Bool == a
        case let a as Int: return (b as? NSNumber)?.doubleValue == Double(a)
        case let a as Double: return (b as? NSNumber)?.doubleValue == a
        default: return false
        }
    }

    @Test func valuesAreNative() throws {
        let text =
            #" {"int": 42, "negative": -7, "zero": -0, "fraction": -2.5, "exponent": 1E2, "big": 9223372036854775808, "#
            + #""max": 9223372036854775807, "flags": [true, false, null], "empty": {}, "none": [],"#
            + #" "text": "q\"b\\s\/\b\f\n\r\t\u00e9\ud83d\ude00 é"} "#
        let o = try #require(try parse(text) as? [String: Any])
        #expect(o.count == 11)
        #expect(o["int"] as? Int == 42 && o["negative"] as? Int == -7 && o["zero"] as? Int == 0)
        #expect(o["max"] as? Int == Int.max)
        #expect(o["fraction"] as? Double == -2.5 && !(o["fraction"] is Int))
        // A number with an exponent, or too large for an Int, is a Double.
        #expect(o["exponent"] as? Double == 100 && !(o["exponent"] is Int))
        #expect(o["big"] as? Double == 9_223_372_036_854_775_808.0)
        let flags = try #require(o["flags"] as? [Any])
        #expect(flags.count == 3 && flags[0] as? Bool == true && flags[1] as? Bool == false && flags[2] is NSNull)
        #expect((o["empty"] as? [String: Any])?.isEmpty == true && (o["none"] as? [Any])?.isEmpty == true)
        #expect(o["text"] as? String == "q\"b\\s/\u{8}\u{C}\n\r\t\u{E9}\u{1F600} \u{E9}")
        #expect(try parse("3") as? Int == 3)
        #expect(try parse("\"\"") as? String == "")
        #expect(try parse("1.5e-3") as? Double == 0.0015)
    }

    @Test func malformedTextIsRefusedAtItsByte() {
        let cases: [(String, String, Int)] = [
            ("", "unexpected end", 0),
            ("   ", "unexpected end", 3),
            ("{\"a\":1} x", "trailing characters", 8),
            ("{\"a\":1}}", "trailing characters", 7),
            ("01", "bad number", 2),
            ("[01]", "bad number", 3),
            ("1.", "bad number", 2),
            ("1.e5", "bad number", 2),
            ("-", "bad number", 1),
            ("-a", "bad number", 1),
            ("1e", "bad number", 2),
            ("1e+", "bad number", 3),
            (".5", "unexpected character", 0),
            ("+1", "unexpected character", 0),
            ("1e999", "number out of range", 5),
            ("[1,]", "unexpected character", 3),
            ("[1 2]", "expected ']'", 3),
            ("{,}", "expected a key", 1),
            ("{\"a\" 1}", "expected ':'", 5),
            ("{\"a\":1,}", "expected a key", 7),
            ("{\"a\":1 \"b\":2}", "expected '}'", 7),
            ("{1:2}", "expected a key", 1),
            ("{\"a\":1,\"a\":2}", "duplicate key 'a'", 12),
            ("tru", "bad literal", 0),
            ("nul", "bad literal", 0),
            ("True", "unexpected character", 0),
            ("\"abc", "unterminated string", 4),
            ("\"a\\", "unterminated string", 3),
            ("\"a\\x\"", "bad escape", 4),
            ("\"a\tb\"", "control character in a string", 2),
            ("\"\\u12\"", "bad \\u escape", 3),
            ("\"\\u12G4\"", "bad \\u escape", 5),
            ("\"\\ud800\"", "lone surrogate", 7),
            ("\"\\ud800\\u0041\"", "lone surrogate", 13),
            ("\"\\udc00\"", "lone surrogate", 7),
            ("\"\\u0041", "unterminated string", 7),
        ]
        for (text, problem, offset) in cases {
            #expect(failure(Array(text.utf8)) == "\(problem) at \(offset)", "\(text.debugDescription)")
        }
        // Bytes that are not UTF-8 inside a string, with or without escapes before them.
        #expect(failure([0x22, 0xFF, 0x22]) == "invalid UTF-8 in a string at 3")
        #expect(failure([0x22, 0x5C, 0x6E, 0xC3, 0x22]) == "invalid UTF-8 in a string at 5")
    }

    @Test func nestingIsLimited() throws {
        let depth = MetadataJSON.maximumDepth
        #expect(depth == 64)
        let deepest = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
        var inner: Any = try parse(deepest)
        for _ in 1..<depth { inner = try #require((inner as? [Any])?.first) }
        #expect((inner as? [Any])?.isEmpty == true)
        let tooDeep = String(repeating: "{\"a\":", count: depth) + "[]" + String(repeating: "}", count: depth)
        #expect(failure(Array(tooDeep.utf8)) == "nested more than 64 deep at \(5 * depth)")
        // A million brackets: refused at the limit, not by running out of stack.
        #expect(
            failure([UInt8](repeating: UInt8(ascii: "["), count: 1_000_000)) == "nested more than 64 deep at \(depth)")
    }

    /// The metadata of `.dnk` files DenseKit writes, parsed both ways; and every cut of it refused.
    @Test(arguments: ["tv-tiny-legacy-opset17.onnx", "keras3-tiny-sigmoid14.keras"])
    func writtenMetadataMatchesJSONSerialization(_ fixture: String) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("model.dnk").path
        var converter = Converter()
        converter.acceptDeviations = true
        _ = try converter.convert(source: Fixtures.path(fixture), to: path)
        let file = try Data(contentsOf: URL(fileURLWithPath: path))
        func u64(_ at: Int) -> Int {
            file.withUnsafeBytes { Int(UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt64.self))) }
        }
        let metadata = Array(file[u64(16)..<(u64(16) + u64(24))])
        let ours = try parse(metadata)
        let foundation = try JSONSerialization.jsonObject(with: Data(metadata))
        #expect(same(ours, foundation))
        let (x, y, one, oneAndAHalf) = (
            try parse(#"{"a":[1,"x"]}"#), try parse(#"{"a":[1,"y"]}"#), try parse("[1]"), try parse("[1.5]")
        )
        #expect(!same(x, y) && !same(one, oneAndAHalf) && same(x, x))
        // The native values serialize (as the transfer record does) and read back to the same tree.
        let again = try JSONSerialization.jsonObject(with: JSONSerialization.data(withJSONObject: ours))
        #expect(same(ours, again))
        #expect(try #require(ours as? [String: Any])["structure"] is [String: Any])
        for cut in 0..<metadata.count {
            #expect(failure(Array(metadata.prefix(cut))) != nil, "cut at \(cut)")
        }
    }
}
