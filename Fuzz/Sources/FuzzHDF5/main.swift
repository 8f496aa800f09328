import DenseKit
import FuzzSupport

fuzz { _ = try? KerasImporter.load(data: $0, path: "fuzz.h5") }
