"""Export DenseNets with torch.onnx.export (both exporters) and record onnxruntime's outputs.

Run by `make fixtures` (tiny nets, committed under fixtures/) and `make fixtures-full`
(DenseNet-121 with torchvision's layout, written to a folder given on the command line).
Never run by the tests. Weights are torchvision's random initialisation with a fixed seed,
plus randomised BatchNorm statistics so that folding BN is visible in the numbers.

usage: make_torch_fixtures.py tiny OUTDIR
       make_torch_fixtures.py full OUTDIR
       make_torch_fixtures.py heads OUTDIR   (only the fine-tuned-head fixtures, part of tiny)
       make_torch_fixtures.py monai OUTDIR   (only MONAI's tiny fixtures, part of tiny)
       make_torch_fixtures.py modules OUTDIR (only the whole-module and TorchScript fixtures, part of tiny)
       make_torch_fixtures.py timm OUTDIR    (only timm's tiny fixture, part of tiny)
       make_torch_fixtures.py zoo OUTDIR     (only the ONNX model zoo layout's tiny fixtures, part of tiny)
       make_torch_fixtures.py quantized OUTDIR (only onnxruntime's int8 quantisations, part of tiny)
"""

import os
import re
import sys

import numpy as np
import onnx
import onnxruntime as ort
import safetensors.torch
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper
from torchvision.models import densenet as tvd

import fixture_meta


class PlainLayer(nn.Module):
    """A dense layer without bottleneck (the paper's plain DenseNet): BN-ReLU-Conv3x3(k)."""

    def __init__(self, channels, growth):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, growth, 3, padding=1, bias=False)

    def forward(self, features):
        x = torch.cat(features, 1)
        return self.conv1(F.relu(self.norm1(x)))


class PlainBlock(nn.ModuleDict):
    def __init__(self, layers, channels, growth):
        super().__init__()
        for i in range(layers):
            self.add_module("denselayer%d" % (i + 1), PlainLayer(channels + i * growth, growth))

    def forward(self, x):
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class CifarDenseNet(nn.Module):
    """The paper's CIFAR DenseNet (3x3 stem, three equal blocks), built from torchvision's parts."""

    def __init__(self, depth, growth, bottleneck, theta, classes):
        super().__init__()
        n = (depth - 4) // (6 if bottleneck else 3)
        channels = 2 * growth if bottleneck else 16
        feats = [("conv0", nn.Conv2d(3, channels, 3, padding=1, bias=False))]
        for b in range(3):
            if bottleneck:
                block = tvd._DenseBlock(n, channels, 4, growth, 0.0)
            else:
                block = PlainBlock(n, channels, growth)
            feats.append(("denseblock%d" % (b + 1), block))
            channels += n * growth
            if b < 2:
                out = int(channels * theta)
                feats.append(("transition%d" % (b + 1), tvd._Transition(channels, out)))
                channels = out
        feats.append(("norm5", nn.BatchNorm2d(channels)))
        self.features = nn.Sequential()
        for name, m in feats:
            self.features.add_module(name, m)
        self.classifier = nn.Linear(channels, classes)

    def forward(self, x):
        out = F.relu(self.features(x))
        out = F.adaptive_avg_pool2d(out, (1, 1))
        return self.classifier(torch.flatten(out, 1))


def randomise_bn(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.5)


def export(model, x, path, dynamo, opset, fold=True, dynamic_batch=False):
    kwargs = dict(input_names=["input"], output_names=["logits"], opset_version=opset)
    if dynamo:
        torch.onnx.export(model, (x,), path, dynamo=True, external_data=True, **kwargs)
    else:
        if dynamic_batch:
            kwargs["dynamic_axes"] = {"input": {0: "batch"}, "logits": {0: "batch"}}
        torch.onnx.export(model, (x,), path, dynamo=False, do_constant_folding=fold, **kwargs)


def typed_float_copy(src, dst):
    """The same model with every float initializer in TensorProto.float_data instead of raw_data."""
    m = onnx.load(src)
    for t in m.graph.initializer:
        if t.data_type == onnx.TensorProto.FLOAT:
            a = numpy_helper.to_array(t)
            t.ClearField("raw_data")
            t.float_data.extend(a.flatten().tolist())
    onnx.save(m, dst)


def float16_copy(src, dst):
    """The same model with float16 weights (Cast to float32 in the graph, as fp16 exports do)."""
    m = onnx.load(src)
    g = m.graph
    casts = []
    for t in list(g.initializer):
        if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) > 1:
            a = numpy_helper.to_array(t).astype(np.float16)
            half = numpy_helper.from_array(a, t.name + "_fp16")
            g.initializer.remove(t)
            g.initializer.append(half)
            casts.append(onnx.helper.make_node("Cast", [half.name], [t.name], to=onnx.TensorProto.FLOAT))
    for c in reversed(casts):
        g.node.insert(0, c)
    onnx.save(m, dst)


def exact_integer_options():
    """onnxruntime's session options with its exact integer arithmetic on every CPU: without VNNI (AVX2, AVX-512
    without it) its default u8 x s8 kernels add pairs of products in int16 (`vpmaddubsw`) and saturate, so the int8
    files' outputs would depend on the CPU that made the references; `session.x64quantprecision` runs those products
    as u8 x u8, exactly (what VNNI and ARM compute anyway). Changes nothing in a float model."""
    options = ort.SessionOptions()
    options.add_session_config_entry("session.x64quantprecision", "1")
    return options


def reference(path, x):
    sess = ort.InferenceSession(path, exact_integer_options(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def torch_counts(model):
    """torch's parameters(), and that plus the BN running statistics (Keras's convention)."""
    trainable = sum(p.numel() for p in model.parameters())
    stats = sum(b.numel() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var")))
    return trainable, trainable + stats


def record(model, path, x):
    np.save(path[:-5] + ".out.npy", reference(path, x))
    fixture_meta.write(path[:-5] + ".meta.json", *torch_counts(model), fixture_meta.onnx_samples(path))
    print("wrote", path, file=sys.stderr)


def write_all(model, x, outdir, prefix, variants):
    model.eval()
    for name, kw in variants:
        path = os.path.join(outdir, "%s-%s.onnx" % (prefix, name))
        export(model, torch.from_numpy(x), path, **kw)
        record(model, path, x)


TORCH_VARIANTS = [
    ("legacy-opset11-unfolded", dict(dynamo=False, opset=11, fold=False)),
    ("legacy-opset17", dict(dynamo=False, opset=17, fold=True, dynamic_batch=True)),
    ("dynamo-opset18", dict(dynamo=True, opset=18)),
]


def checkpoints(net, outdir, prefix, x):
    """The same weights as PyTorch checkpoints: torch.save in both formats, and safetensors (also in
    float16 and bfloat16, and as an old checkpoint: nn.DataParallel's 'module.' prefix and the 2017
    key names 'norm.1', 'conv.2' that torchvision's loader still rewrites)."""
    state = net.state_dict()
    with torch.no_grad():  # torch's own output, the reference for every checkpoint of these weights
        np.save(os.path.join(outdir, prefix + ".out.npy"), net.eval()(torch.from_numpy(x)).numpy())
    torch.save(state, os.path.join(outdir, prefix + ".pth"))
    torch.save(state, os.path.join(outdir, prefix + "-legacy.pth"), _use_new_zipfile_serialization=False)
    save = safetensors.torch.save_file
    save({k: v.contiguous() for k, v in state.items()}, os.path.join(outdir, prefix + ".safetensors"), metadata={"format": "pt"})
    for dtype, name in ((torch.float16, "fp16"), (torch.bfloat16, "bf16")):
        path = os.path.join(outdir, "%s-%s.safetensors" % (prefix, name))
        save({k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}, path, metadata={"format": "pt"})
        # The reference: torch itself, loading the file (strict) into a float32 model.
        copy = tvd.DenseNet(growth_rate=4, block_config=(2, 2, 2), num_init_features=8, bn_size=4, num_classes=10)
        copy.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in safetensors.torch.load_file(path).items()}, strict=True)
        with torch.no_grad():
            np.save(path[:-len(".safetensors")] + ".out.npy", copy.eval()(torch.from_numpy(x)).numpy())
    old = {"module." + re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v for k, v in state.items()}
    save(old, os.path.join(outdir, prefix + "-module-2017.safetensors"))


def tiny_torchvision(seed, bn_seed):
    torch.manual_seed(seed)
    net = tvd.DenseNet(growth_rate=4, block_config=(2, 2, 2), num_init_features=8, bn_size=4, num_classes=10)
    randomise_bn(net, bn_seed)
    return net


# The heads people ship on a torchvision DenseNet (16 features in the tiny net): CheXNet's 14-way
# sigmoid, a dropout before the classifier, a two-layer head, and a feature extractor.
HEADS = [
    ("tv-tiny-sigmoid14", lambda: nn.Sequential(nn.Linear(16, 14), nn.Sigmoid()), ["legacy-opset17", "dynamo-opset18"]),
    ("tv-tiny-dropout3", lambda: nn.Sequential(nn.Dropout(0.2), nn.Linear(16, 3)), ["legacy-opset17", "dynamo-opset18"]),
    ("tv-tiny-mlp", lambda: nn.Sequential(nn.Linear(16, 12), nn.ReLU(), nn.Dropout(0.2), nn.Linear(12, 5), nn.Sigmoid()),
     ["legacy-opset17", "dynamo-opset18"]),
    ("tv-tiny-features", lambda: nn.Identity(), ["legacy-opset17"]),
]


def heads(outdir, x):
    variants = dict(TORCH_VARIANTS)
    for i, (prefix, head, names) in enumerate(HEADS):
        net = tiny_torchvision(40 + i, 50 + i)
        net.classifier = head()
        write_all(net, x, outdir, prefix, [(n, variants[n]) for n in names])
    # Dynamic height and width (torchvision runs at any size): exported at 64x64, run at 80x72.
    net = tiny_torchvision(48, 58).eval()
    path = os.path.join(outdir, "tv-tiny-dynamic-hw-legacy-opset17.onnx")
    torch.onnx.export(net, (torch.from_numpy(x),), path, dynamo=False, input_names=["input"], output_names=["logits"],
                      opset_version=17, dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}})
    other = np.random.default_rng(59).standard_normal((2, 3, 80, 72)).astype(np.float32)
    np.save(os.path.join(outdir, "input-80x72.npy"), other)
    record(net, path, other)


class CheXNet(nn.Module):
    """The CheXNet checkpoint's shape: a wrapper whose `densenet121` attribute is the DenseNet, with the
    classifier replaced by Linear + Sigmoid (keys module.densenet121.features..., .classifier.0)."""

    def __init__(self, net, classes):
        super().__init__()
        self.densenet121 = net
        features = net.classifier.in_features
        self.densenet121.classifier = nn.Sequential(nn.Linear(features, classes), nn.Sigmoid())

    def forward(self, x):
        return self.densenet121(x)


def training_checkpoint(net, x, path, legacy=False):
    """torch.save of a training dict around nn.DataParallel's state_dict, with SGD momentum state
    after one step, as research code saves it; the reference is the classifier's values before the
    sigmoid (a state_dict stores no activations)."""
    model = CheXNet(net, 14)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    model(torch.from_numpy(x)).sum().backward()
    optimizer.step()
    wrapped = nn.DataParallel(model)
    checkpoint = {"epoch": 3, "arch": "densenet121", "state_dict": wrapped.state_dict(), "optimizer": optimizer.state_dict(),
                  "best_loss": 0.25}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)
    model.eval()
    model.densenet121.classifier[1] = nn.Identity()
    with torch.no_grad():
        np.save(path[:-len(".pth.tar")] + ".logits.npy", model(torch.from_numpy(x)).numpy())


def ort_extended(outdir, x):
    """The legacy opset-17 export as onnxruntime's extended optimisation level saves it (its Conv + Relu
    pairs become com.microsoft FusedConv), with onnxruntime's output on it."""
    base = os.path.join(outdir, "tv-tiny-legacy-opset17.onnx")
    path = os.path.join(outdir, "tv-tiny-ort-extended.onnx")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = path
    ort.InferenceSession(base, options, providers=["CPUExecutionProvider"])
    assert any(n.op_type == "FusedConv" for n in onnx.load(path).graph.node), "no FusedConv"
    np.save(path[:-5] + ".out.npy", reference(path, x))


def float16_io(outdir, x):
    """The legacy opset-17 export through onnxconverter-common's float16 conversion (float16 weights,
    input and output), with onnxruntime's output on it for the input cast to float16."""
    from onnxconverter_common import float16

    path = os.path.join(outdir, "tv-tiny-legacy-opset17-fp16io.onnx")
    onnx.save(float16.convert_float_to_float16(onnx.load(os.path.join(outdir, "tv-tiny-legacy-opset17.onnx"))), path)
    np.save(path[:-5] + ".out.npy", reference(path, x.astype(np.float16)).astype(np.float32))


def static_quantizations(source, prefix, x, variants, preprocess=True):
    """onnxruntime's static quantisation of the float ONNX file `source` (after its quant_pre_process unless
    `preprocess` is false, as users who skip the step onnxruntime recommends quantise), calibrated on
    eight seeded images plus the shared input x, each variant (name, format, activation type, per channel) written as
    `<prefix>-<name>.onnx` with onnxruntime's output (its default optimisations fuse QDQ into its QLinear kernels)."""
    import tempfile

    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    input_name = onnx.load(source).graph.input[0].name

    class Images(CalibrationDataReader):
        def __init__(self):
            images = np.random.default_rng(41).standard_normal((8,) + x.shape[1:]).astype(np.float32)
            self.batches = iter([{input_name: image[None]} for image in list(images) + list(x)])

        def get_next(self):
            return next(self.batches, None)

    prepared = os.path.join(tempfile.mkdtemp(), "prepared.onnx")
    if preprocess:
        quant_pre_process(source, prepared)
    else:
        prepared = source
    for name, fmt, activations, per_channel in variants:
        path = f"{prefix}-{name}.onnx"
        quantize_static(prepared, path, Images(), quant_format=fmt, activation_type=activations,
                        weight_type=QuantType.QInt8, per_channel=per_channel)
        np.save(path[:-5] + ".out.npy", reference(path, x))
        print("wrote", path, file=sys.stderr)


def quantized_onnx(outdir, x):
    """The legacy opset-17 export of tv-tiny quantised: QDQ with u8 activations and per-tensor s8 weights, QDQ with s8
    activations and per-channel s8 weights, and QOperator (QLinearConv, com.microsoft QLinearConcat,
    QLinearAveragePool, QLinearGlobalAveragePool, QGemm) with u8 activations. For issue 41."""
    from onnxruntime.quantization import QuantFormat, QuantType

    static_quantizations(os.path.join(outdir, "tv-tiny-legacy-opset17.onnx"), os.path.join(outdir, "tv-tiny"), x, [
        ("qdq-u8", QuantFormat.QDQ, QuantType.QUInt8, False),
        ("qdq-s8-perchannel", QuantFormat.QDQ, QuantType.QInt8, True),
        ("qoperator-u8", QuantFormat.QOperator, QuantType.QUInt8, False)])


def quantized_keras_onnx(outdir):
    """tf2onnx's export of the tiny tf_keras DenseNet (keras2-tiny-tf2onnx.onnx, NHWC input) quantised to QDQ with u8
    activations, QDQ and QOperator, without onnxruntime's pre-processing (which would fuse the classifier's MatMul and
    Add into a Gemm): a Pad before its max pool (in QOperator, of codes), the classifier a MatMul then an Add of the
    bias, each quantised (QLinearMatMul, QLinearAdd, QLinearSoftmax). For issue 41."""
    from onnxruntime.quantization import QuantFormat, QuantType

    x = np.load(os.path.join(outdir, "input-64-nhwc.npy"))
    static_quantizations(os.path.join(outdir, "keras2-tiny-tf2onnx.onnx"), os.path.join(outdir, "keras2-tiny-tf2onnx"),
                         x, [("qdq-u8", QuantFormat.QDQ, QuantType.QUInt8, False),
                             ("qoperator-u8", QuantFormat.QOperator, QuantType.QUInt8, False)], preprocess=False)


def quantized_preprocessing_onnx(outdir):
    """tf2onnx's exports of the tf_keras DenseNets with their own preprocessing (0..255 pixels, NHWC) quantised
    without pre-processing to QDQ and QOperator with u8 activations: a Rescaling
    (keras2-tiny-rescaling-tf2onnx.onnx) becomes a QLinearMul and a QLinearAdd of one constant each on the input's
    codes (in QDQ, a Mul and an Add that onnxruntime fuses into them); a 1/255 Rescaling then an adapted
    Normalization (keras2-tiny-normalization-adapted-tf2onnx.onnx) a QLinearMul, then a QLinearAdd and a QLinearMul
    of one code per channel ([1, 1, 1, 3]); then a Transpose of codes before the stem. With onnxruntime's outputs,
    and `<file>.steps.npy` [3, 256]: the code the steps give in each channel for each of the 256 input codes (as
    float32), read from the QOperator file's last step (the node the Transpose reads, made a graph output) on an
    input whose first 256 pixels quantise to 0..255 in every channel. For issue 41."""
    from onnxruntime.quantization import QuantFormat, QuantType

    pixels = np.load(os.path.join(outdir, "input-64-pixels-nhwc.npy"))
    for name in ["keras2-tiny-rescaling-tf2onnx", "keras2-tiny-normalization-adapted-tf2onnx"]:
        prefix = os.path.join(outdir, name)
        static_quantizations(prefix + ".onnx", prefix, pixels,
                             [("qdq-u8", QuantFormat.QDQ, QuantType.QUInt8, False),
                              ("qoperator-u8", QuantFormat.QOperator, QuantType.QUInt8, False)], preprocess=False)
        path = prefix + "-qoperator-u8.onnx"
        model = onnx.load(path)
        constants = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        transpose = next(n for n in model.graph.node if n.op_type == "Transpose")
        last = next(n for n in model.graph.node if n.output[0] == transpose.input[0])
        assert last.op_type in ("QLinearAdd", "QLinearMul"), last.op_type
        quantize = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "input")
        scale, zero = float(constants[quantize.input[1]]), int(constants[quantize.input[2]])
        model.graph.output.append(onnx.helper.make_tensor_value_info(last.output[0], onnx.TensorProto.UINT8, None))
        x = np.zeros(pixels[:1].shape, np.float32)
        x.reshape(-1, 3)[:256] = ((np.arange(256, dtype=np.float32) - zero) * np.float32(scale))[:, None]
        session = ort.InferenceSession(
            model.SerializeToString(), exact_integer_options(), providers=["CPUExecutionProvider"])
        codes = session.run([last.output[0]], {session.get_inputs()[0].name: x})[0].reshape(-1, 3)[:256].T
        np.save(path[:-5] + ".steps.npy", codes.astype(np.float32))  # float32: what DenseKit's npy reader takes
        print("wrote", path[:-5] + ".steps.npy", file=sys.stderr)


def sensitivity_onnx(outdir, x):
    """tv-b262: torchvision's class with blocks (2, 6, 2), so that block2 has a fifth layer, exported (legacy, opset
    17) and quantised to QDQ u8: the pair `diff FLOAT INT8 --sensitivity` is tested on (issue 41)."""
    from onnxruntime.quantization import QuantFormat, QuantType

    torch.manual_seed(262)
    net = tvd.DenseNet(growth_rate=4, block_config=(2, 6, 2), num_init_features=8, bn_size=4, num_classes=10)
    randomise_bn(net, 262)
    net.eval()
    path = os.path.join(outdir, "tv-b262.onnx")
    export(net, torch.from_numpy(x), path, dynamo=False, opset=17, fold=True, dynamic_batch=True)
    record(net, path, x)
    static_quantizations(path, os.path.join(outdir, "tv-b262"), x, [("qdq-u8", QuantFormat.QDQ, QuantType.QUInt8,
                                                                      False)])


def tiny(outdir):
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(7)
    torch.manual_seed(1)
    # An ImageNet-style DenseNet-BC from torchvision's class, scaled down.
    net = tvd.DenseNet(growth_rate=4, block_config=(2, 2, 2), num_init_features=8, bn_size=4, num_classes=10)
    randomise_bn(net, 2)
    x = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    np.save(os.path.join(outdir, "input-64.npy"), x)
    write_all(net, x, outdir, "tv-tiny", TORCH_VARIANTS)
    checkpoints(net, outdir, "tv-tiny", x)
    base = os.path.join(outdir, "tv-tiny-legacy-opset17.onnx")
    for suffix, fn in (("typed", typed_float_copy), ("fp16", float16_copy)):
        path = os.path.join(outdir, "tv-tiny-legacy-opset17-%s.onnx" % suffix)
        fn(base, path)
        record(net, path, x)
    ort_extended(outdir, x)
    float16_io(outdir, x)
    quantized_onnx(outdir, x)
    sensitivity_onnx(outdir, x)
    if os.path.exists(os.path.join(outdir, "keras2-tiny-tf2onnx.onnx")):  # made by make_keras_fixtures.py tiny
        quantized_keras_onnx(outdir)
        quantized_preprocessing_onnx(outdir)

    heads(outdir, x)
    training_checkpoint(tiny_torchvision(90, 91), x, os.path.join(outdir, "tv-tiny-chexnet-checkpoint.pth.tar"))
    monai_tiny(outdir)
    whole_modules_tiny(outdir)
    timm_tiny(outdir)
    zoo_tiny(outdir)

    # CIFAR-style nets: DenseNet-BC (L=16, k=4) and plain DenseNet (L=10, k=4).
    xc = rng.standard_normal((2, 3, 32, 32)).astype(np.float32)
    np.save(os.path.join(outdir, "input-32.npy"), xc)
    torch.manual_seed(3)
    bc = CifarDenseNet(16, 4, True, 0.5, 10)
    randomise_bn(bc, 4)
    write_all(bc, xc, outdir, "cifar-bc-tiny", TORCH_VARIANTS[1:2])
    # Its state_dict too: a CIFAR stem (3x3 conv, no BatchNorm or pool) told from the keys and shapes.
    safetensors.torch.save_file(bc.state_dict(), os.path.join(outdir, "cifar-bc-tiny.safetensors"), metadata={"format": "pt"})
    torch.manual_seed(5)
    plain = CifarDenseNet(10, 4, False, 1.0, 10)
    randomise_bn(plain, 6)
    write_all(plain, xc, outdir, "cifar-plain-tiny", TORCH_VARIANTS[1:2])


def zoo_layout(net, path, opset, images):
    """The ONNX model zoo's DenseNet graph (densenet-7 to -9: Caffe -> Caffe2 -> ONNX), built with onnx.helper
    from a torchvision DenseNet's weights, node for node as the zoo's is: input `data_0` [1, 3, size, size];
    every BatchNorm a BatchNormalization with unit scale and zero bias (`spatial` 1 before opset 9) followed by
    a Mul (gamma) and an Add (beta) with [C, 1, 1] constants, Caffe's Scale layer; each dense layer's output
    concatenated to the running features; the global pool an AveragePool over the whole final map; the
    classifier a 1x1 Conv with bias; output `fc6_1` [1, classes, 1, 1]. Checked by onnxruntime against torch."""
    from onnx import TensorProto, helper

    net = net.eval()
    size = images.shape[-1]
    state = {k: v.detach().numpy().astype(np.float32) for k, v in net.state_dict().items()}
    nodes, inits = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def node(op, name, inputs, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def norm(prefix, name, x):
        c = state[prefix + ".weight"].shape[0]
        attrs = {"epsilon": 1e-5} | ({"spatial": 1} if opset < 9 else {})
        y = node("BatchNormalization", name + "/bn", [x, const(name + "/bn_s", np.ones(c)),
                 const(name + "/bn_b", np.zeros(c)), const(name + "/bn_m", state[prefix + ".running_mean"]),
                 const(name + "/bn_v", state[prefix + ".running_var"])], **attrs)
        y = node("Mul", name + "/scale", [y, const(name + "/scale_w", state[prefix + ".weight"].reshape(c, 1, 1))])
        return node("Add", name + "/scale_b", [y, const(name + "/scale_bias", state[prefix + ".bias"].reshape(c, 1, 1))])

    def conv(prefix, name, x, pad, stride=1, bias=False):
        w = state[prefix + ".weight"]
        inputs = [x, const(name + "_w", w)] + ([const(name + "_b", state[prefix + ".bias"])] if bias else [])
        return node("Conv", name, inputs, kernel_shape=list(w.shape[2:]), pads=[pad] * 4, strides=[stride] * 2)

    x = conv("features.conv0", "conv1", "data_0", 3, stride=2)
    x = node("Relu", "conv1/relu", [norm("features.norm0", "conv1", x)])
    x = node("MaxPool", "pool1", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    blocks = [m for m in net.features if isinstance(m, tvd._DenseBlock)]
    for b, block in enumerate(blocks):
        for i in range(len(block)):
            p, n = "features.denseblock%d.denselayer%d" % (b + 1, i + 1), "conv%d_%d" % (b + 2, i + 1)
            y = node("Relu", n + "/x1/relu", [norm(p + ".norm1", n + "/x1", x)])
            y = conv(p + ".conv1", n + "/x1", y, 0)
            y = node("Relu", n + "/x2/relu", [norm(p + ".norm2", n + "/x2", y)])
            y = conv(p + ".conv2", n + "/x2", y, 1)
            x = node("Concat", "concat_%d_%d" % (b + 2, i + 1), [x, y], axis=1)
        if b < len(blocks) - 1:
            p, n = "features.transition%d" % (b + 1), "conv%d_blk" % (b + 2)
            y = conv(p + ".conv", n, node("Relu", n + "/relu", [norm(p + ".norm", n, x)]), 0)
            x = node("AveragePool", "pool%d" % (b + 2), [y], kernel_shape=[2, 2], strides=[2, 2])
    x = node("Relu", "conv5_blk/relu", [norm("features.norm5", "conv5_blk", x)])
    final = net.features(torch.zeros(1, 3, size, size)).shape[-1]
    x = node("AveragePool", "pool5", [x], kernel_shape=[final, final], strides=[1, 1])
    classes, features = state["classifier.weight"].shape
    state["classifier.weight"] = state["classifier.weight"].reshape(classes, features, 1, 1)
    x = conv("classifier", "fc6", x, 0, bias=True)
    nodes[-1].output[0] = "fc6_1"
    # IR version 3, as the zoo's files: every initializer is a graph input too.
    inputs = [helper.make_tensor_value_info("data_0", TensorProto.FLOAT, [1, 3, size, size])] + [
        helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.dims)) for t in inits]
    graph = helper.make_graph(
        nodes, "densenet121", inputs,
        [helper.make_tensor_value_info("fc6_1", TensorProto.FLOAT, [1, classes, 1, 1])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="onnx-caffe2",
                              ir_version=3)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    out = sess.run(None, {"data_0": images})[0]
    with torch.no_grad():
        expected = net(torch.from_numpy(images)).numpy()
    assert out.shape == (1, classes, 1, 1) and np.abs(out.reshape(1, -1) - expected).max() <= 1e-4 * np.abs(expected).max()
    np.save(path[:-5] + ".out.npy", out)


def zoo_tiny(outdir):
    """The zoo layout at opsets 7 and 9 from the same weights as tv-tiny (torchvision's export of them:
    tv-tiny-legacy-opset17.onnx), on one image (the zoo's batch is fixed at 1)."""
    x = np.load(os.path.join(outdir, "input-64.npy"))[:1]
    np.save(os.path.join(outdir, "input-64-one.npy"), x)
    for opset in (7, 9):
        zoo_layout(tiny_torchvision(1, 2), os.path.join(outdir, "tv-tiny-zoo-opset%d.onnx" % opset), opset, x)


def state_dict_samples(state, first_conv, classifier):
    """stem conv, the first dense layer's first conv and the classifier, as the state_dict holds them."""
    return {"stem.conv.weight": fixture_meta.sample(state["features.conv0.weight"].numpy()),
            "block1.layer1.firstConv.weight": fixture_meta.sample(state[first_conv].numpy()),
            "head.classifier.weight": fixture_meta.sample(state[classifier].numpy())}


def monai_densenet(outdir, name, model, x):
    """A MONAI DenseNet's state_dict (torch.save), MONAI's own output on x, and MONAI's parameter counts."""
    model.eval()
    state = model.state_dict()
    torch.save(state, os.path.join(outdir, name + ".pth"))
    with torch.no_grad():
        np.save(os.path.join(outdir, name + ".out.npy"), model(torch.from_numpy(x)).numpy())
    samples = state_dict_samples(
        state, "features.denseblock1.denselayer1.layers.conv1.weight", "class_layers.out.weight")
    fixture_meta.write(os.path.join(outdir, name + ".meta.json"), *torch_counts(model), samples)
    print("wrote", name, file=sys.stderr)


def tiny_monai():
    """MONAI's DenseNet class scaled down: one input channel (an X-ray), 3 classes, fixed seeds."""
    from monai.networks.nets import DenseNet as MonaiDenseNet

    torch.manual_seed(21)
    net = MonaiDenseNet(spatial_dims=2, in_channels=1, out_channels=3, init_features=8, growth_rate=4,
                        block_config=(2, 2, 2), bn_size=4)
    randomise_bn(net, 22)
    return net


def monai_tiny(outdir):
    """MONAI's DenseNet class (spatial_dims=2), scaled down: one input channel (an X-ray), 3 classes; and
    a 3-D one (spatial_dims=3, 5-D conv weights), which DenseKit refuses."""
    from monai.networks.nets import DenseNet as MonaiDenseNet

    rng = np.random.default_rng(17)
    x = rng.standard_normal((2, 1, 64, 64)).astype(np.float32)
    np.save(os.path.join(outdir, "input-64-gray.npy"), x)
    monai_densenet(outdir, "monai-tiny", tiny_monai(), x)
    torch.manual_seed(23)
    volume = MonaiDenseNet(spatial_dims=3, in_channels=1, out_channels=2, init_features=4, growth_rate=2,
                           block_config=(1, 1), bn_size=2)
    torch.save(volume.state_dict(), os.path.join(outdir, "monai-tiny-3d.pth"))


def whole_modules_tiny(outdir):
    """Whole pickled modules and TorchScript archives, as people ship them: torch.save(model) in both
    formats of the tiny torchvision net (the weights of tv-tiny.pth, whose output is their reference),
    torch.jit.trace and torch.jit.script of it, MONAI's tiny net as a whole module and as TorchScript
    (a MONAI bundle's model.ts), and torchxrayvision's DenseNet class (one channel, 3 outputs) as a whole
    module with the op_threshs buffer its trained weights carry (its reference: the logits, before the
    sigmoid and op_norm that the buffer turns on)."""
    import torchxrayvision as xrv

    net = tiny_torchvision(1, 2).eval()
    saved = torch.load(os.path.join(outdir, "tv-tiny.pth"))
    assert all(torch.equal(saved[k], v) for k, v in net.state_dict().items()), "not tv-tiny.pth's weights"
    torch.save(net, os.path.join(outdir, "tv-tiny-module.pth"))
    torch.save(net, os.path.join(outdir, "tv-tiny-module-legacy.pth"), _use_new_zipfile_serialization=False)
    x = torch.from_numpy(np.load(os.path.join(outdir, "input-64.npy")))
    torch.jit.trace(net, x).save(os.path.join(outdir, "tv-tiny-traced.pt"))
    torch.jit.script(net).save(os.path.join(outdir, "tv-tiny-scripted.pt"))
    torch.save({"epoch": 3, "model": net, "best_auc": 0.81}, os.path.join(outdir, "tv-tiny-module-checkpoint.pth"))

    monai = tiny_monai().eval()
    saved = torch.load(os.path.join(outdir, "monai-tiny.pth"))
    assert all(torch.equal(saved[k], v) for k, v in monai.state_dict().items()), "not monai-tiny.pth's weights"
    torch.save(monai, os.path.join(outdir, "monai-tiny-module.pth"))
    torch.jit.script(monai).save(os.path.join(outdir, "monai-tiny.ts"))

    torch.manual_seed(31)
    ray = xrv.models.DenseNet(growth_rate=4, block_config=(2, 2, 2), num_init_features=8, bn_size=4,
                              num_classes=3, in_channels=1, op_threshs=torch.rand(3) * 0.5 + 0.25)
    randomise_bn(ray, 32)
    ray.eval()
    torch.save(ray, os.path.join(outdir, "xrv-tiny-module.pth"))
    torch.save(ray, os.path.join(outdir, "xrv-tiny-module-legacy.pth"), _use_new_zipfile_serialization=False)
    gray = torch.from_numpy(np.load(os.path.join(outdir, "input-64-gray.npy")))
    with torch.no_grad():
        np.save(os.path.join(outdir, "xrv-tiny-module.logits.npy"), ray.classifier(ray.features2(gray)).numpy())
    print("wrote the whole modules and TorchScript archives", file=sys.stderr)


def timm_tiny(outdir):
    """timm's DenseNet class (its default stem: torchvision's keys), scaled down: the state_dict and timm's
    own output."""
    from timm.models.densenet import DenseNet as TimmDenseNet

    torch.manual_seed(41)
    net = TimmDenseNet(growth_rate=4, block_config=(2, 2, 2), num_classes=5, bn_size=4)
    randomise_bn(net, 42)
    net.eval()
    torch.save(net.state_dict(), os.path.join(outdir, "timm-tiny.pth"))
    x = torch.from_numpy(np.load(os.path.join(outdir, "input-64.npy")))
    with torch.no_grad():
        np.save(os.path.join(outdir, "timm-tiny.out.npy"), net(x).numpy())
    # The deep stem (3x3 convs 3->k->k->2k with BN-ReLU): without a blur pool (densenet264d's stem) as a
    # state_dict; with timm's BlurPool2d (densenetblur121d's) as a state_dict, a whole module and TorchScript.
    from timm.layers import BlurPool2d
    for seed, name, aa in [(43, "timm-tiny-deep", None), (45, "timm-tiny-blur", BlurPool2d)]:
        torch.manual_seed(seed)
        net = TimmDenseNet(growth_rate=4, block_config=(2, 2, 2), num_classes=5, bn_size=4, stem_type="deep",
                           aa_layer=aa)
        randomise_bn(net, seed + 1)
        net.eval()
        torch.save(net.state_dict(), os.path.join(outdir, name + ".pth"))
        with torch.no_grad():
            np.save(os.path.join(outdir, name + ".out.npy"), net(x).numpy())
        if aa is not None:
            torch.save(net, os.path.join(outdir, name + "-module.pth"))
            torch.jit.trace(net, x).save(os.path.join(outdir, name + "-traced.pt"))
            export(net, x, os.path.join(outdir, name + "-dynamo.onnx"), dynamo=True, opset=18)


def full(outdir):
    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(11)
    torch.manual_seed(121)
    net = tvd.densenet121(weights=None)
    randomise_bn(net, 122)
    x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    np.save(os.path.join(outdir, "input-224.npy"), x)
    write_all(net, x, outdir, "densenet121", TORCH_VARIANTS)
    zoo_layout(net, os.path.join(outdir, "densenet121-zoo-opset9.onnx"), 9, x)
    # The other ImageNet DenseNets, one export each.
    for i, name in enumerate(["densenet169", "densenet201", "densenet161"]):
        torch.manual_seed(200 + i)
        other = getattr(tvd, name)(weights=None)
        randomise_bn(other, 300 + i)
        write_all(other, x, outdir, name, TORCH_VARIANTS[1:2])
    # CheXNet's shape: DenseNet-121 with a 14-way sigmoid classifier.
    torch.manual_seed(400)
    chexnet = tvd.densenet121(weights=None)
    randomise_bn(chexnet, 401)
    chexnet.classifier = nn.Sequential(nn.Linear(1024, 14), nn.Sigmoid())
    write_all(chexnet, x, outdir, "densenet121-sigmoid14", TORCH_VARIANTS[1:2])
    # The same weights as the ONNX exports above, as the checkpoints people download: a .pth of
    # DenseNet-121 in each torch.save format, safetensors of 169, and a training checkpoint.
    with torch.no_grad():  # torch's own outputs, the references for the checkpoints
        np.save(os.path.join(outdir, "densenet121.out.npy"), net.eval()(torch.from_numpy(x)).numpy())
    torch.save(net.state_dict(), os.path.join(outdir, "densenet121.pth"))
    torch.save(net.state_dict(), os.path.join(outdir, "densenet121-legacy.pth"), _use_new_zipfile_serialization=False)
    for i, name in enumerate(["densenet169", "densenet201", "densenet161"]):
        torch.manual_seed(200 + i)
        other = getattr(tvd, name)(weights=None)
        randomise_bn(other, 300 + i)
        state = {k: v.contiguous() for k, v in other.state_dict().items()}
        with torch.no_grad():
            np.save(os.path.join(outdir, name + ".out.npy"), other.eval()(torch.from_numpy(x)).numpy())
        if name == "densenet169":
            safetensors.torch.save_file(state, os.path.join(outdir, name + ".safetensors"), metadata={"format": "pt"})
        else:
            torch.save(state, os.path.join(outdir, name + ".pth"))
    torch.manual_seed(402)
    training_checkpoint(tvd.densenet121(weights=None), x, os.path.join(outdir, "chexnet-checkpoint.pth.tar"))
    # onnxruntime's static int8 quantisations of the legacy export, as for tv-tiny (issue 41).
    from onnxruntime.quantization import QuantFormat, QuantType
    static_quantizations(os.path.join(outdir, "densenet121-legacy-opset17.onnx"), os.path.join(outdir, "densenet121"),
                         x, [("qdq-u8", QuantFormat.QDQ, QuantType.QUInt8, False),
                             ("qdq-s8-perchannel", QuantFormat.QDQ, QuantType.QInt8, True),
                             ("qoperator-u8", QuantFormat.QOperator, QuantType.QUInt8, False)])
    # MONAI: a 1-channel DenseNet-121 with 14 outputs (a chest X-ray model's shape), and DenseNet-264,
    # the paper's Table 1 column that torchvision lacks.
    from monai.networks.nets import DenseNet121 as Monai121, DenseNet264 as Monai264
    gray = rng.standard_normal((1, 1, 224, 224)).astype(np.float32)
    np.save(os.path.join(outdir, "input-224-gray.npy"), gray)
    torch.manual_seed(500)
    xray = Monai121(spatial_dims=2, in_channels=1, out_channels=14)
    randomise_bn(xray, 501)
    monai_densenet(outdir, "monai-densenet121", xray, gray)
    torch.manual_seed(502)
    deepest = Monai264(spatial_dims=2, in_channels=3, out_channels=1000)
    randomise_bn(deepest, 503)
    monai_densenet(outdir, "monai-densenet264", deepest, x)
    # torchxrayvision's DenseNet (DenseNet-121, one channel, 18 pathologies) as its weight files are: a
    # whole pickled module; the reference is its logits (no op_threshs without trained weights).
    import torchxrayvision as xrv
    torch.manual_seed(504)
    ray = xrv.models.DenseNet(weights=None)
    randomise_bn(ray, 505)
    ray.eval()
    torch.save(ray, os.path.join(outdir, "xrv-densenet121-module.pth"))
    with torch.no_grad():
        np.save(os.path.join(outdir, "xrv-densenet121-module.out.npy"), ray(torch.from_numpy(gray)).numpy())
    fixture_meta.write(os.path.join(outdir, "xrv-densenet121-module.meta.json"), *torch_counts(ray), {})
    # timm's densenet121 (torchvision's keys) and densenetblur121d (deep stem, blur pool; no blur filter
    # stored), as timm's own files are: safetensors.
    import timm
    for seed, name in [(506, "densenet121"), (508, "densenetblur121d")]:
        torch.manual_seed(seed)
        tm = timm.create_model(name, pretrained=False)
        randomise_bn(tm, seed + 1)
        tm.eval()
        safetensors.torch.save_file({k: v.contiguous() for k, v in tm.state_dict().items()},
                                    os.path.join(outdir, f"timm-{name}.safetensors"))
        with torch.no_grad():
            np.save(os.path.join(outdir, f"timm-{name}.out.npy"), tm(torch.from_numpy(x)).numpy())
        fixture_meta.write(os.path.join(outdir, f"timm-{name}.meta.json"), *torch_counts(tm), {})

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "heads":
        # Only the head fixtures (the others are unchanged by a rerun): the same input as tiny's.
        heads(sys.argv[2], np.load(os.path.join(sys.argv[2], "input-64.npy")))
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "monai":
        monai_tiny(sys.argv[2])  # only MONAI's, part of tiny
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "modules":
        whole_modules_tiny(sys.argv[2])  # only the whole modules and TorchScript archives, part of tiny
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "ort-extended":
        ort_extended(sys.argv[2], np.load(os.path.join(sys.argv[2], "input-64.npy")))  # part of tiny
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "quantized":
        quantized_onnx(sys.argv[2], np.load(os.path.join(sys.argv[2], "input-64.npy")))  # part of tiny
        sensitivity_onnx(sys.argv[2], np.load(os.path.join(sys.argv[2], "input-64.npy")))
        quantized_keras_onnx(sys.argv[2])
        quantized_preprocessing_onnx(sys.argv[2])
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "quantized-keras":
        quantized_keras_onnx(sys.argv[2])  # part of tiny (after the Keras fixtures)
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "quantized-preprocessing":
        quantized_preprocessing_onnx(sys.argv[2])  # part of tiny (after the Keras fixtures)
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "sensitivity":
        sensitivity_onnx(sys.argv[2], np.load(os.path.join(sys.argv[2], "input-64.npy")))  # part of tiny
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "fp16io":
        float16_io(sys.argv[2], np.load(os.path.join(sys.argv[2], "input-64.npy")))  # part of tiny
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "zoo":
        zoo_tiny(sys.argv[2])  # only the ONNX model zoo layout, part of tiny
        sys.exit(0)
    if len(sys.argv) == 3 and sys.argv[1] == "timm":
        timm_tiny(sys.argv[2])  # only timm's, part of tiny
        sys.exit(0)
    if len(sys.argv) != 3 or sys.argv[1] not in ("tiny", "full"):
        sys.exit(__doc__)
    {"tiny": tiny, "full": full}[sys.argv[1]](sys.argv[2])
