"""Load files `densekit convert` wrote in the framework each is for, run them, and save the outputs.

Called by the tests (ConvertTargetTests), never by the product. One process per framework loads
every case of a manifest, so torch or TensorFlow starts once:

usage: check_converted.py onnxruntime|torch|tf_keras|keras3|tflite MANIFEST.json

MANIFEST: {"cases": [{"file": ..., "input": X.npy, "layout": "nchw"|"nhwc", "output": Y.npy,
                      "model": MODEL}, ...]}
MODEL (what to build for the weights files; ignored for ONNX and TensorFlow Lite):
  {"application": "DenseNet121" or null, "blocks": [2, 2, 2], "growth": 4, "stem": 8, "bnSize": 4,
   "size": 64, "pool": "average"|"max"|null, "dense": [[out, activation], ...],
   "weightsArgument": true (Keras 2: DenseNet121(weights=path) instead of load_weights),
   "inChannels": 1 (torch: the stem conv replaced for another number of input channels; default 3),
   "timm": "deep" or "blur" (torch: timm's DenseNet with stem_type="deep", and aa_layer=BlurPool2d for "blur")}

How each framework is used is how its users load such a file:
- onnxruntime: onnx.checker.check_model(full_check=True), then an InferenceSession (NCHW input).
- torch: torchvision.models.DenseNet (or densenet121 ...), the classifier replaced as the head
  needs (nn.Linear; a Sequential of Linears and activation modules; nn.Identity for none), then
  load_state_dict(safetensors.torch.load_file(path), strict=True); eval; NCHW input. A single
  Linear's activation (logits in torchvision's forward) is applied after the forward; a max pool
  or no pool is applied to F.relu(model.features(x)) as torchvision's forward cannot.
- tf_keras / keras3: the keras.applications model, or keras.applications.densenet's own blocks for
  other sizes (scripts/make_keras_fixtures.py), then load_weights (NHWC input).
- tflite: tf.lite.Interpreter (TensorFlow's reference kernels off: the default CPU kernels a user gets), the
  input resized to the image's batch and size (NHWC), allocate_tensors, invoke.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402


def load_input(case, layout):
    x = np.load(case["input"]).astype(np.float32)
    if case["layout"] != layout:
        x = x.transpose(0, 2, 3, 1) if layout == "nhwc" else x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x)


def run_onnxruntime(case):
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(case["file"], full_check=True)
    # Exact integer products on every CPU (as the fixtures' references: make_torch_fixtures.exact_integer_options).
    options = ort.SessionOptions()
    options.add_session_config_entry("session.x64quantprecision", "1")
    session = ort.InferenceSession(case["file"], options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: load_input(case, "nchw")})[0]


def run_torch(case):
    import safetensors.torch
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torchvision.models as tvm

    m = case["model"]
    dense = m["dense"]
    classes = dense[-1][0] if dense else 1000
    if m.get("timm"):  # timm's deep stem ("deep"), with its blur pool ("blur"): timm's own DenseNet class
        from timm.layers import BlurPool2d
        from timm.models.densenet import DenseNet as TimmDenseNet

        net = TimmDenseNet(growth_rate=m["growth"], block_config=tuple(m["blocks"]), bn_size=m["bnSize"],
                           num_classes=classes, stem_type="deep", aa_layer=BlurPool2d if m["timm"] == "blur" else None)
    elif m.get("application"):
        net = getattr(tvm, m["application"].lower())(weights=None, num_classes=classes)
    else:
        net = tvm.DenseNet(growth_rate=m["growth"], block_config=tuple(m["blocks"]), num_init_features=m["stem"],
                           bn_size=m["bnSize"], num_classes=classes)
    if m.get("inChannels", 3) != 3:  # a 1-channel (X-ray) stem, as DenseKit's conversion note says
        net.features.conv0 = nn.Conv2d(m["inChannels"], m["stem"], kernel_size=7, stride=2, padding=3, bias=False)
    activations = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "softmax": lambda: nn.Softmax(dim=1)}
    features = net.classifier.in_features
    if not dense:
        net.classifier = nn.Identity()
    elif len(dense) > 1:
        modules = []
        for out, activation in dense:
            modules.append(nn.Linear(features, out))
            if activation in activations:
                modules.append(activations[activation]())
            features = out
        net.classifier = nn.Sequential(*modules)
    net.load_state_dict(safetensors.torch.load_file(case["file"]), strict=True)
    net.eval()
    x = torch.from_numpy(load_input(case, "nchw"))
    with torch.no_grad():
        if m["pool"] == "average":
            y = net(x)
        else:
            y = F.relu(net.features(x))
            if m["pool"] == "max":
                y = net.classifier(torch.flatten(F.adaptive_max_pool2d(y, 1), 1))
        if len(dense) == 1 and dense[0][1] in activations:
            y = activations[dense[0][1]]()(y)
    return y.numpy()


def keras_model(k, densenet_mod, m, path, keras2):
    dense = m["dense"]

    def act(a):
        return None if a in ("linear", "unknown") else a

    if m.get("application"):
        app = getattr(k.applications, m["application"])
        size = (m["size"], m["size"], 3)
        if m["pool"] == "average" and len(dense) == 1:
            weights = path if m.get("weightsArgument") else None
            model = app(weights=weights, classes=dense[0][0], classifier_activation=act(dense[0][1]), input_shape=size)
            if weights is None:
                model.load_weights(path)
            return model
        base = app(weights=None, include_top=False, input_shape=size,
                   pooling={"average": "avg", "max": "max", None: None}[m["pool"]])
        img, x = base.input, base.output
    else:
        import make_keras_fixtures as mk

        img, x = mk.tiny_backbone(k.layers, densenet_mod, m["blocks"], m["growth"], m["stem"], (m["size"], m["size"], 3),
                                  legacy=keras2)
        if m["pool"] == "average":
            x = k.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        elif m["pool"] == "max":
            x = k.layers.GlobalMaxPooling2D(name="max_pool")(x)
    for i, (out, activation) in enumerate(dense):
        x = k.layers.Dense(out, activation=act(activation), name="predictions" if len(dense) == 1 else None)(x)
    model = k.Model(img, x)
    model.load_weights(path)
    return model


def run_keras(case, keras2):
    if keras2:
        import tf_keras as k
        from tf_keras.src.applications import densenet as densenet_mod
    else:
        import keras as k
        from keras.src.applications import densenet as densenet_mod
    model = keras_model(k, densenet_mod, case["model"], case["file"], keras2)
    return np.asarray(model.predict(load_input(case, "nhwc"), verbose=0))


def run_tflite(case):
    import tensorflow as tf

    x = load_input(case, "nhwc")
    interpreter = tf.lite.Interpreter(model_path=case["file"])
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("onnxruntime", "torch", "tf_keras", "keras3", "tflite"):
        sys.exit(__doc__)
    framework = sys.argv[1]
    with open(sys.argv[2]) as f:
        cases = json.load(f)["cases"]
    run = {"onnxruntime": run_onnxruntime, "torch": run_torch,
           "tf_keras": lambda c: run_keras(c, True), "keras3": lambda c: run_keras(c, False),
           "tflite": run_tflite}[framework]
    for case in cases:
        np.save(case["output"], np.asarray(run(case), dtype=np.float32))
        print("ran", case["file"], file=sys.stderr)


if __name__ == "__main__":
    main()
