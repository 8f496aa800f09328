import DenseKit
import Foundation
import FuzzSupport

fuzz { bytes in
    guard let net = try? DNKReader.load(data: bytes, path: "fuzz.dnk") else { return }
    exercise(net)
    // What was read must write and read back to the same tensors.
    guard (try? net.validate()) != nil else { return }
    let provenance = Provenance(sourceFile: "fuzz.dnk", sourceSHA256: "", sourceFormat: "dnk", producer: "fuzz")
    guard let encoded = try? DNKModelWriter().encode(net, dtype: .f32, provenance: provenance) else {
        fatalError("a validated graph did not encode")
    }
    guard let again = try? DNKReader.load(data: encoded, path: "again.dnk"),
          again.tensors.map(\.values) == net.tensors.map(\.values), again.layerNames == net.layerNames else {
        fatalError("a .dnk round trip changed the graph")
    }
}
