import DenseKitGraph

/// A value-level graph of canonical operations on NCHW activations: the step between an ONNX
/// node list and the recognised DenseNet. Exporter artefacts (Identity, Dropout, Flatten,
/// Reshape, Pad, input Transpose, MatMul+Add) are still present here and removed by `normalized()`.
package struct OpGraph {
    package enum Op {
        case conv(Conv2D)
        case batchNorm(BatchNorm)
        case relu
        case pool(Pool2D)
        case globalAveragePool
        case globalMaxPool
        case concat
        case linear(Linear)
        /// Adds a per-feature constant (the Add after a MatMul classifier).
        case addBias(Tensor)
        case softmax
        case sigmoid
        case tanh
        /// Identity, Dropout, Flatten, Reshape, Squeeze and a float Cast of activations: taken as the
        /// identity, their shape arguments not read. In every export DenseKit knows they only flatten
        /// the pooled (N, C, 1, 1) features before the classifier; the recognizer checks the
        /// structure around them, not what they would do to a shape.
        case passThrough
        /// Zero padding of H and W: top, left, bottom, right.
        case pad([Int])
        case transpose([Int])

        /// What the op is, for error messages.
        package var name: String {
            switch self {
            case .conv: return "a Conv"
            case .batchNorm: return "a BatchNormalization"
            case .relu: return "a ReLU"
            case .pool(let pool): return pool.kind == .max ? "a MaxPool" : "an AveragePool"
            case .globalAveragePool: return "a global average pool"
            case .globalMaxPool: return "a global max pool"
            case .concat: return "a Concat"
            case .linear: return "a linear layer"
            case .addBias: return "an Add"
            case .softmax: return "a Softmax"
            case .sigmoid: return "a Sigmoid"
            case .tanh: return "a Tanh"
            case .passThrough: return "a pass-through"
            case .pad: return "a Pad"
            case .transpose: return "a Transpose"
            }
        }
    }

    package struct Node {
        package var label: String
        package var op: Op
        /// Activation inputs only; weights live inside `op`.
        package var inputs: [String]
        package var output: String
    }

    package var nodes: [Node]
    package var input: String
    package var output: String

    /// Removes pass-through nodes, merges Pad into the conv or pool that consumes it, and folds
    /// an Add of a constant into the Linear before it.
    package func normalized() throws -> OpGraph {
        var alias: [String: String] = [:]
        func resolve(_ value: String) -> String {
            var value = value
            while let target = alias[value] { value = target }
            return value
        }
        var pads: [String: (input: String, pads: [Int], label: String)] = [:]
        var kept: [Node] = []
        var byOutput: [String: Int] = [:]
        for var node in nodes {
            node.inputs = node.inputs.map(resolve)
            switch node.op {
            case .passThrough:
                alias[node.output] = node.inputs[0]
                continue
            case .pad(let padding):
                pads[node.output] = (node.inputs[0], padding, node.label)
                continue
            case .conv(var conv):
                if let pad = pads[node.inputs[0]] {
                    conv.pads = zip(conv.pads, pad.pads).map { $0 + $1 }
                    node.inputs[0] = pad.input
                    node.op = .conv(conv)
                }
            case .pool(var pool):
                if let pad = pads[node.inputs[0]] {
                    guard pool.kind == .max || pool.countIncludePad else {
                        throw ImportError.unsupported(
                            .node(pad.label), problem: "pads the input of an average pool that excludes padding")
                    }
                    pool.pads = zip(pool.pads, pad.pads).map { $0 + $1 }
                    node.inputs[0] = pad.input
                    node.op = .pool(pool)
                }
            case .addBias(let bias):
                if let linearIndex = byOutput[node.inputs[0]], case .linear(var linear) = kept[linearIndex].op,
                    linear.bias == nil,
                    bias.count == linear.outFeatures
                {
                    linear.bias = Tensor(
                        name: bias.name, shape: [bias.count], storedDType: bias.storedDType, values: bias.values)
                    kept[linearIndex].op = .linear(linear)
                    alias[node.output] = node.inputs[0]
                    continue
                }
                throw ImportError.unsupported(
                    .node(node.label), problem: "Add of a constant that does not follow a MatMul")
            default:
                break
            }
            if node.inputs.contains(where: { pads[$0] != nil }) {
                throw ImportError.unsupported(
                    .node(node.label), problem: "consumes a Pad; only Conv and pooling may follow a Pad")
            }
            byOutput[node.output] = kept.count
            kept.append(node)
        }
        return OpGraph(nodes: kept, input: input, output: resolve(output))
    }
}
