import DenseKit
import FuzzSupport

fuzz { _ = try? DNKReader.load(data: $0, path: "fuzz.dnk") }
