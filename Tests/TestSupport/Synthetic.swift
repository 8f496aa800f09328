import DenseKit
import DenseKitGraph

/// DenseNets built directly in the canonical form, for tests that need no file.
public enum Synthetic {
    /// The architecture exactly as `spec` describes it. With `random`, weights are seeded random
    /// values (BN variances positive); without, tensors carry shapes only (enough for the verifier).
    public static func denseNet(
        _ spec: ArchitectureSpec, classes: Int, inputSize: Int? = nil,
        random: inout SeededRandom?
    ) -> DenseNet {
        func tensor(_ name: String, _ shape: [Int], positive: Bool = false) -> Tensor {
            let count = shape.reduce(1, *)
            guard random != nil else {
                return Tensor(name: name, shape: shape, values: positive ? [Float](repeating: 1, count: count) : [])
            }
            let fanIn = shape.count == 4 ? shape[1] * shape[2] * shape[3] : shape.count == 2 ? shape[1] : 1
            let scale = (2 / Float(fanIn)).squareRoot()
            let values = positive ? random!.floats(count, 0.5...1.5) : random!.floats(count, -scale...scale)
            return Tensor(name: name, shape: shape, values: values)
        }
        func bn(_ name: String, _ channels: Int) -> BatchNorm {
            BatchNorm(
                gamma: tensor(name + ".gamma", [channels], positive: true), beta: tensor(name + ".beta", [channels]),
                mean: tensor(name + ".mean", [channels]), variance: tensor(name + ".var", [channels], positive: true),
                epsilon: 1e-5)
        }
        func conv(_ name: String, _ outputs: Int, _ inputs: Int, _ kernel: Int, stride: Int = 1) -> Conv2D {
            Conv2D(
                weight: tensor(name, [outputs, inputs, kernel, kernel]), stride: stride,
                pads: [Int](repeating: kernel / 2, count: 4))
        }
        let kernel = spec.growthRate
        let stem: Stem
        if spec.stem == .imagenet {
            stem = Stem(
                conv: conv("stem.conv", spec.stemFilters, 3, 7, stride: 2), norm: bn("stem.bn", spec.stemFilters),
                relu: true,
                pool: Pool2D(kind: .max, kernel: 3, stride: 2, pads: [1, 1, 1, 1]))
        } else {
            stem = Stem(conv: conv("stem.conv", spec.stemFilters, 3, 3), norm: nil, relu: false, pool: nil)
        }
        var channels = spec.stemFilters
        var blocks: [DenseBlock] = []
        var transitions: [Transition] = []
        for (b, count) in spec.blocks.enumerated() {
            var layers: [DenseLayer] = []
            for inputs in 0..<count {
                let name = "block\(b + 1).layer\(inputs + 1)"
                if spec.bottleneck {
                    let width = spec.bottleneckWidth
                    layers.append(
                        DenseLayer(
                            norm: bn(name + ".bn1", channels),
                            bottleneck: Bottleneck(
                                conv: conv(name + ".conv1", width, channels, 1), norm: bn(name + ".bn2", width)),
                            conv: conv(name + ".conv2", kernel, width, 3)))
                } else {
                    layers.append(
                        DenseLayer(
                            norm: bn(name + ".bn1", channels), bottleneck: nil,
                            conv: conv(name + ".conv", kernel, channels, 3)))
                }
                channels += kernel
            }
            blocks.append(DenseBlock(layers: layers))
            if b < spec.blocks.count - 1 {
                let out = spec.transitionWidths[b]
                transitions.append(
                    Transition(
                        norm: bn("transition\(b + 1).bn", channels),
                        conv: conv("transition\(b + 1).conv", out, channels, 1),
                        pool: Pool2D(kind: .average, kernel: 2, stride: 2)))
                channels = out
            }
        }
        let head = Head(
            norm: bn("head.bn", channels),
            classifier: Linear(
                weight: tensor("head.fc", [classes, channels]), bias: tensor("head.fc.bias", [classes])),
            softmax: false)
        let source = ModelSource(
            path: "synthetic", format: .onnx, producer: "tests", storedParameters: 0, storedBytes: 0, storedTensors: 0)
        return DenseNet(
            source: source,
            input: InputSpec(
                name: "input", layout: .nchw, channels: 3, height: inputSize, width: inputSize, batch: nil),
            stem: stem, blocks: blocks, transitions: transitions, head: head)
    }

    /// Shape-only convenience.
    public static func denseNet(_ spec: ArchitectureSpec, classes: Int, inputSize: Int? = nil) -> DenseNet {
        var none: SeededRandom? = nil
        return denseNet(spec, classes: classes, inputSize: inputSize, random: &none)
    }
}
