import DenseKit
import DenseKitExecute
import DenseKitFormats
import DenseKitGraph
import FuzzSupport

// Every array the reader accepts is fed to a tiny DenseNet, as `run --input` would.
let model = try! ModelLoader.load(path: fixtures.appendingPathComponent("tv-tiny-legacy-opset17.onnx").path)
let executor = try! Executor(model, threads: 1)

fuzz { bytes in
    guard let array = try? NPY.parse(bytes) else { return }
    for layout in [InputSpec.Layout.nchw, .nhwc] {
        guard let modelInput = try? ModelInput(array, layout: layout, for: model), modelInput.values.count <= 1 << 22
        else { continue }
        _ = try? executor.run(
            modelInput.values, batch: modelInput.batch, height: modelInput.height, width: modelInput.width)
    }
}
