"""Facts about a fixture, recorded by the tool that made it, for the tests to compare against.

Writes <prefix>.meta.json beside the fixture: parameter counts as the framework reports them and a few
weight tensors as numpy reads them from the saved file (first values, sum, shape), in DenseKit's
canonical layout (OIHW conv weights, (out, in) classifier weights) so the tests can compare directly.
"""

import json

import numpy as np


def sample(array):
    a = np.asarray(array, dtype=np.float64)
    return {"shape": list(a.shape), "first": a.flatten()[:8].tolist(), "sum": float(a.sum())}


def onnx_samples(path):
    """stem conv, the first dense layer's first conv, and the classifier, read with onnx + numpy."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(path)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    for n in m.graph.node:  # float16 exports: Cast(weight_fp16) -> weight
        if n.op_type == "Cast" and n.input[0] in inits:
            inits[n.output[0]] = inits[n.input[0]].astype(np.float32)
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    out = {"stem.conv.weight": sample(inits[convs[0].input[1]]),
           "block1.layer1.firstConv.weight": sample(inits[convs[1].input[1]])}
    for n in m.graph.node:
        if n.op_type == "Gemm":
            trans_b = next((a.i for a in n.attribute if a.name == "transB"), 0)
            w = inits[n.input[1]]
            out["head.classifier.weight"] = sample(w if trans_b else w.T)
        elif n.op_type == "MatMul" and n.input[1] in inits:
            out["head.classifier.weight"] = sample(inits[n.input[1]].T)
    return out


def keras_samples(model):
    """The same three tensors from a Keras model's weights (HWIO -> OIHW, (in, out) -> (out, in));
    a backbone nested as one layer of the model is searched too."""
    def flat(layers):
        return [leaf for l in layers for leaf in (flat(l.layers) if hasattr(l, "layers") else [l])]

    convs = [l for l in flat(model.layers) if l.__class__.__name__ == "Conv2D"]
    dense = [l for l in flat(model.layers) if l.__class__.__name__ == "Dense"]
    out = {"stem.conv.weight": sample(convs[0].get_weights()[0].transpose(3, 2, 0, 1)),
           "block1.layer1.firstConv.weight": sample(convs[1].get_weights()[0].transpose(3, 2, 0, 1))}
    if dense:
        out["head.classifier.weight"] = sample(dense[-1].get_weights()[0].T)
    return out


def write(path, trainable, total, samples, **extra):
    facts = {"trainable": int(trainable), "withBatchNormStatistics": int(total), "samples": samples}
    facts.update(extra)
    with open(path, "w") as f:
        json.dump(facts, f, indent=1, sort_keys=True)
