import Foundation

extension NPY {
    /// The header of a `.npy` file: a Python dict literal, which numpy reads with `ast.literal_eval`.
    /// Only what numpy writes is accepted: keys and strings in single or double quotes, `True` and
    /// `False`, and tuples of non-negative integers; as in Python, a key given twice takes its last value.
    struct HeaderDictionary {
        enum Value: Equatable {
            case string(String)
            case boolean(Bool)
            case tuple([Int])
        }

        private(set) var fields: [String: Value] = [:]
        private let text: [Character]
        private var at = 0

        init(_ header: String) throws {
            text = Swift.Array(header)
            skipSpace()
            try expect("{")
            skipSpace()
            while peek != "}" {
                let key = try string()
                skipSpace()
                try expect(":")
                skipSpace()
                fields[key] = try value()
                skipSpace()
                if peek == "," {
                    at += 1
                    skipSpace()
                } else {
                    break
                }
            }
            try expect("}")
            skipSpace()
            guard at == text.count else { throw Error.malformed("header: unexpected text after the dictionary") }
        }

        private var peek: Character? { at < text.count ? text[at] : nil }

        private mutating func skipSpace() {
            while let character = peek, character == " " || character == "\n" || character == "\t" || character == "\r"
            { at += 1 }
        }

        private mutating func expect(_ character: Character) throws {
            guard peek == character else {
                throw Error.malformed(
                    "header: expected '\(character)' at character \(at), found \(peek.map { "'\($0)'" } ?? "the end")")
            }
            at += 1
        }

        private mutating func string() throws -> String {
            guard let quote = peek, quote == "'" || quote == "\"" else {
                throw Error.malformed("header: expected a quoted string at character \(at)")
            }
            at += 1
            var out = ""
            while let character = peek, character != quote {
                guard character != "\\", character != "\n" else {
                    throw Error.malformed("header: escapes are not supported")
                }
                out.append(character)
                at += 1
            }
            try expect(quote)
            return out
        }

        private mutating func value() throws -> Value {
            switch peek {
            case "'", "\"": return .string(try string())
            case "(": return .tuple(try tuple())
            default:
                for (word, value) in [("True", true), ("False", false)]
                where text[at...].starts(with: Swift.Array(word)) {
                    at += word.count
                    return .boolean(value)
                }
                throw Error.malformed("header: unexpected value at character \(at)")
            }
        }

        /// `()`, `(3,)`, `(2, 3)` or `(2, 3,)`; `(3)` is Python's integer 3, not a tuple.
        private mutating func tuple() throws -> [Int] {
            try expect("(")
            var items: [Int] = []
            var commas = 0
            skipSpace()
            while peek != ")" {
                var digits = ""
                while let character = peek, character.isASCII, character.isNumber {
                    digits.append(character)
                    at += 1
                }
                guard digits.count <= 18, let item = Int(digits) else {
                    throw Error.malformed("header: bad dimension at character \(at) of the shape")
                }
                items.append(item)
                guard items.count <= NPY.maximumRank else {
                    throw Error.unsupported("rank \(items.count) or more (at most \(NPY.maximumRank))")
                }
                skipSpace()
                guard peek == "," else { break }
                commas += 1
                at += 1
                skipSpace()
            }
            try expect(")")
            guard items.count != 1 || commas == 1 else {
                throw Error.malformed("header: the shape (\(items[0])) is not a tuple")
            }
            return items
        }
    }
}
