import DenseKit
import DenseKitGraph
import Foundation
import TestSupport
import Testing

/// A Keras file read in a child process (`densekit probe`) comes back as the graph the same file
/// gives when read in this process: the same source description, tensor names and values.
@Suite struct ImportIsolationTests {
    @Test(arguments: ["keras2-tiny-avg.h5", "keras3-tiny.keras", "keras2-tiny-max-weights.h5"])
    func theChildsGraphIsTheInProcessGraph(_ fixture: String) throws {
        let path = Fixtures.path(fixture)
        let isolation = ImportIsolation(executable: try densekitBinary().path, arguments: ["probe"], deadline: 60)
        let direct = try ModelLoader.load(path: path)
        let isolated = try ModelLoader.load(path: path, isolation: isolation)
        #expect(isolated.source.format == direct.source.format && isolated.source.producer == direct.source.producer)
        #expect(isolated.source.notes == direct.source.notes && isolated.source.path == path)
        #expect(isolated.source.storedTensors == direct.source.storedTensors)
        let names = direct.tensors.map(\.name)
        #expect(isolated.tensors.map(\.name) == names)
        // The file's own names (`conv1/conv/kernel:0`, `layers/conv2d/vars/0`), not the `.dnk`'s canonical ones.
        #expect(!names.isEmpty && names.allSatisfy { $0.contains("/") }, "\(names.prefix(3))")
        for (a, b) in zip(isolated.tensors, direct.tensors) {
            #expect(a.shape == b.shape && a.values.map(\.bitPattern) == b.values.map(\.bitPattern), "\(a.name)")
        }
    }
}
