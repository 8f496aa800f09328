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
            let n = shape.reduce(1, *)
            guard random != nil else {
                return Tensor(name: name, shape: shape, values: positive ? [Float](repeating: 1, count: n) : [])
            }
            let fanIn = shape.count == 4 ? shape[1] * shape[2] * shape[3] : shape.count == 2 ? shape[1] : 1
            let scale = (2 / Float(fanIn)).squareRoot()
            let values = positive ? random!.floats(n, 0.5...1.5) : random!.floats(n, -scale...scale)
            return Tensor(name: name, shape: shape, values: values)
        }
        func bn(_ name: String, _ c: Int) -> BatchNorm {
            BatchNorm(
                gamma: tensor(name + ".gamma", [c], positive: true), beta: tensor(name + ".beta", [c]),
                mean: tensor(name + ".mean", [c]), variance: tensor(name + ".var", [c], positive: true), epsilon: 1e-5)
        }
        func conv(_ name: String, _ o: Int, _ i: Int, _ k: Int, stride: Int = 1) -> Conv2D {
            Conv2D(weight: tensor(name, [o, i, k, k]), stride: stride, pads: [Int](repeating: k / 2, count: 4))
        }
        let k = spec.growthRate
        let stem: Stem
        if spec.stem == .imagenet {
            stem = Stem(
                conv: conv("stem.conv", spec.stemFilters, 3, 7, stride: 2), norm: bn("stem.bn", spec.stemFilters),
                relu: true,
                pool: Pool2D(kind: .max, kernel: 3, stride: 2, pads: [1, 1, 1, 1]))
        } else {
            stem = Stem(conv: conv("stem.conv", spec.stemFilters, 3, 3), norm: nil, relu: false, pool: nil)
        }
        var c = spec.stemFilters
        var blocks: [DenseBlock] = []
        var transitions: [Transition] = []
        for (b, n) in spec.blocks.enumerated() {
            var layers: [DenseLayer] = []
            for i in 0..<n {
                let name = "block\(b + 1).layer\(i + 1)"
                if spec.bottleneck {
                    let w = spec.bottleneckWidth
                    layers.append(
                        DenseLayer(
                            norm: bn(name + ".bn1", c),
                            bottleneck: Bottleneck(conv: conv(name + ".conv1", w, c, 1), norm: bn(name + ".bn2", w)),
                            conv: conv(name + ".conv2", k, w, 3)))
                } else {
                    layers.append(
                        DenseLayer(norm: bn(name + ".bn1", c), bottleneck: nil, conv: conv(name + ".conv", k, c, 3)))
                }
                c += k
            }
            blocks.append(DenseBlock(layers: layers))
            if b < spec.blocks.count - 1 {
                let out = spec.transitionWidths[b]
                transitions.append(
                    Transition(
                        norm: bn("transition\(b + 1).bn", c), conv: conv("transition\(b + 1).conv", out, c, 1),
                        pool: Pool2D(kind: .average, kernel: 2, stride: 2)))
                c = out
            }
        }
        let head = Head(
            norm: bn("head.bn", c),
            classifier: Linear(weight: tensor("head.fc", [classes, c]), bias: tensor("head.fc.bias", [classes])),
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
