"""Save Keras DenseNets in every layout users meet, export one with tf2onnx, and record Keras's outputs.

Run by `make fixtures` (tiny nets, committed under fixtures/) and `make fixtures-full`
(DenseNet-121 from keras.applications, written to a folder given on the command line).
Never run by the tests.

Layouts: Keras 3 legacy .h5, .weights.h5 and .keras; Keras 2 (tf_keras) full-model .h5 and
weights-only .h5 (the layout of the published pretrained files); tf2onnx .onnx of the Keras 2 model.

The tiny nets are built from Keras's own DenseNet building blocks (conv_block, transition_block and
the stem exactly as keras.applications.densenet.DenseNet writes it, so layer names are the real ones)
with growth rate 4 instead of the hard-coded 32, so the files stay a few kilobytes.

usage: make_keras_fixtures.py tiny OUTDIR
       make_keras_fixtures.py heads OUTDIR   (only the fine-tuned-head fixtures, part of tiny)
       make_keras_fixtures.py nested OUTDIR  (backbones nested as one layer of the user's model, part of tiny)
       make_keras_fixtures.py preprocessing OUTDIR  (Rescaling and Normalization layers, part of tiny; also
                                                    tf2onnx-normalization, its one ONNX export)
       make_keras_fixtures.py tflite OUTDIR  (tf.lite's conversions of keras2-tiny.h5 and the other tf_keras
                                             layouts, part of tiny)
       make_keras_fixtures.py tflite-int8 OUTDIR  (the int8 conversions, part of tflite; also tflite-uint8 and
                                                  tflite-preprocessing-int8)
       make_keras_fixtures.py full OUTDIR
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402

import fixture_meta  # noqa: E402


def randomise_bn(model, rng):
    """Non-trivial BN statistics and classifier bias so that their handling shows in the outputs, in nested
    models (a backbone that is one layer of the user's model) too."""
    for layer in model.layers:
        if hasattr(layer, "layers"):
            randomise_bn(layer, rng)
        if layer.__class__.__name__ == "Dense":
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, (rng.standard_normal(bias.shape) * 0.1).astype(np.float32)])
        if layer.__class__.__name__ == "BatchNormalization":
            gamma, beta, mean, var = layer.get_weights()
            n = gamma.shape[0]
            layer.set_weights([
                (rng.random(n) * 0.5 + 0.75).astype(np.float32),
                (rng.standard_normal(n) * 0.1).astype(np.float32),
                (rng.standard_normal(n) * 0.1).astype(np.float32),
                (rng.random(n) * 0.5 + 0.5).astype(np.float32),
            ])


def tiny_backbone(layers_mod, densenet_mod, blocks, growth, stem_filters, input_shape, legacy, preprocess=None):
    """keras.applications.densenet.DenseNet up to its final BN-ReLU (include_top=False, pooling=None),
    with a configurable growth rate and stem width, after `preprocess` (layers on the input) when given.
    Returns the input and the backbone's output."""
    img = layers_mod.Input(shape=input_shape)
    bn_axis = 3
    x = layers_mod.ZeroPadding2D(padding=((3, 3), (3, 3)))(preprocess(img) if preprocess else img)
    x = layers_mod.Conv2D(stem_filters, 7, strides=2, use_bias=False, name="conv1/conv" if legacy else "conv1_conv")(x)
    x = layers_mod.BatchNormalization(axis=bn_axis, epsilon=1.001e-5, name="conv1/bn" if legacy else "conv1_bn")(x)
    x = layers_mod.Activation("relu", name="conv1/relu" if legacy else "conv1_relu")(x)
    x = layers_mod.ZeroPadding2D(padding=((1, 1), (1, 1)))(x)
    x = layers_mod.MaxPooling2D(3, strides=2, name="pool1")(x)
    for b, n in enumerate(blocks):
        for i in range(n):
            x = densenet_mod.conv_block(x, growth, name="conv%d_block%d" % (b + 2, i + 1))
        if b < len(blocks) - 1:
            x = densenet_mod.transition_block(x, 0.5, name="pool%d" % (b + 2))
    x = layers_mod.BatchNormalization(axis=bn_axis, epsilon=1.001e-5, name="bn")(x)
    x = layers_mod.Activation("relu", name="relu")(x)
    return img, x


def tiny_densenet(k, layers_mod, densenet_mod, blocks, growth, stem_filters, input_shape, classes, legacy):
    """keras.applications.densenet.DenseNet (include_top=True) with a configurable growth rate and stem width."""
    img, x = tiny_backbone(layers_mod, densenet_mod, blocks, growth, stem_filters, input_shape, legacy)
    x = layers_mod.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers_mod.Dense(classes, activation="softmax", name="predictions")(x)
    return k.Model(img, x, name="densenet")


def keras_meta(model, path):
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    fixture_meta.write(path, trainable, model.count_params(), fixture_meta.keras_samples(model))


def save_logits(model, k, x, path):
    """What a weights-only file can reproduce (it stores no activations): the last Dense layer's
    values before its activation, from Keras's own features and weights."""
    dense = [l for l in model.layers if l.__class__.__name__ == "Dense"]
    if not dense:
        return
    features = k.Model(model.inputs, dense[-1].input).predict(x, verbose=0)
    kernel, bias = dense[-1].get_weights()
    np.save(path, (features @ kernel + bias).astype(np.float32))


def save_keras3(model, x, outdir, prefix):
    model.save(os.path.join(outdir, prefix + ".keras"))
    model.save(os.path.join(outdir, prefix + ".h5"))
    model.save_weights(os.path.join(outdir, prefix + ".weights.h5"))
    np.save(os.path.join(outdir, prefix + ".out.npy"), model.predict(x, verbose=0))
    keras_meta(model, os.path.join(outdir, prefix + ".meta.json"))


def save_keras2(model, x, outdir, prefix, onnx=True):
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    model.save(os.path.join(outdir, prefix + ".h5"))
    model.save_weights(os.path.join(outdir, prefix + "-weights.h5"))
    np.save(os.path.join(outdir, prefix + ".out.npy"), model.predict(x, verbose=0))
    keras_meta(model, os.path.join(outdir, prefix + ".meta.json"))
    if not onnx:
        return
    spec = (tf.TensorSpec((None,) + tuple(x.shape[1:]), tf.float32, name="input"),)
    path = os.path.join(outdir, prefix + "-tf2onnx.onnx")
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    np.save(path[:-5] + ".out.npy", sess.run(None, {sess.get_inputs()[0].name: x})[0])
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    fixture_meta.write(path[:-5] + ".meta.json", trainable, model.count_params(), fixture_meta.onnx_samples(path))


def tiny(outdir):
    import keras
    import tf_keras
    from keras.src.applications import densenet as k3densenet
    from tf_keras.src.applications import densenet as k2densenet

    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(21)
    x = rng.standard_normal((2, 64, 64, 3)).astype(np.float32)
    np.save(os.path.join(outdir, "input-64-nhwc.npy"), x)

    keras.utils.set_random_seed(22)
    m3 = tiny_densenet(keras, keras.layers, k3densenet, [2, 2, 2], 4, 8, (64, 64, 3), 10, legacy=False)
    randomise_bn(m3, rng)
    save_keras3(m3, x, outdir, "keras3-tiny")

    # A Keras model that is not a DenseNet, for the importer's error case.
    other = keras.Sequential([keras.layers.Input((16, 16, 3)), keras.layers.Conv2D(4, 3, name="conv"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2, name="dense")])
    other.save(os.path.join(outdir, "keras3-not-densenet.h5"))

    tf_keras.utils.set_random_seed(23)
    m2 = tiny_densenet(tf_keras, tf_keras.layers, k2densenet, [2, 2, 2], 4, 8, (64, 64, 3), 10, legacy=True)
    randomise_bn(m2, rng)
    save_keras2(m2, x, outdir, "keras2-tiny")
    heads(outdir)
    nested(outdir)
    preprocessing(outdir)
    tflite(outdir)


def tflite(outdir):
    """tf.lite.TFLiteConverter's conversions of the tiny tf_keras net (keras2-tiny.h5): float32, and float16
    weights (behind DEQUANTIZE), each with TensorFlow Lite's interpreter's output on the shared NHWC input."""
    import tf_keras

    model = tf_keras.models.load_model(os.path.join(outdir, "keras2-tiny.h5"))
    x = np.load(os.path.join(outdir, "input-64-nhwc.npy"))
    save_tflite(model, x, os.path.join(outdir, "keras2-tiny.tflite"), os.path.join(outdir, "keras2-tiny-tflite"))
    save_tflite(model, x, os.path.join(outdir, "keras2-tiny-f16.tflite"),
                os.path.join(outdir, "keras2-tiny-f16-tflite"), float16=True)
    # Keras 3 (keras3-tiny.keras) exported as a SavedModel, converted from it.
    import tempfile

    import keras
    import tensorflow as tf

    folder = tempfile.mkdtemp()
    keras.models.load_model(os.path.join(outdir, "keras3-tiny.keras")).export(folder)
    save_tflite(None, x, os.path.join(outdir, "keras3-tiny-savedmodel.tflite"),
                os.path.join(outdir, "keras3-tiny-savedmodel-tflite"),
                converter=tf.lite.TFLiteConverter.from_saved_model(folder))
    tflite_int8(outdir)
    tflite_layouts(outdir)


def tflite_int8(outdir):
    """tf.lite's int8 conversions of the tiny tf_keras net: dynamic range (int8 weights, float activations through
    hybrid kernels) and full integer (int8 throughout, int8 input and output, calibrated on the shared input), each
    with TensorFlow Lite's kernels' output."""
    import tf_keras

    model = tf_keras.models.load_model(os.path.join(outdir, "keras2-tiny.h5"))
    x = np.load(os.path.join(outdir, "input-64-nhwc.npy"))
    save_tflite(model, x, os.path.join(outdir, "keras2-tiny-int8-dynamic.tflite"),
                os.path.join(outdir, "keras2-tiny-int8-dynamic-tflite"), quantize="dynamic")
    save_tflite(model, x, os.path.join(outdir, "keras2-tiny-int8.tflite"),
                os.path.join(outdir, "keras2-tiny-int8-tflite"), quantize="full")
    tflite_uint8(outdir)
    tflite_preprocessing_int8(outdir)


def tf2onnx_normalization(outdir):
    """tf2onnx's export of the tf_keras net with its 1/255 Rescaling and adapted Normalization: a Mul, an Add and
    a Mul of [1, 1, 1, 3] constants on the NHWC input, then the Transpose to NCHW. With onnxruntime's output."""
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx
    import tf_keras

    model = tf_keras.models.load_model(os.path.join(outdir, "keras2-tiny-normalization-adapted.h5"))
    pixels = np.load(os.path.join(outdir, "input-64-pixels-nhwc.npy"))
    spec = (tf.TensorSpec((None, 64, 64, 3), tf.float32, name="input"),)
    path = os.path.join(outdir, "keras2-tiny-normalization-adapted-tf2onnx.onnx")
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    np.save(path[:-5] + ".out.npy", sess.run(None, {"input": pixels})[0])


def tflite_preprocessing_int8(outdir):
    """The full-integer conversions of the tf_keras nets with their own preprocessing, calibrated on 0..255 pixels:
    a Rescaling (an int8 MUL and ADD of one constant each on the input's codes) and an adapted Normalization (after
    its 1/255 MUL, a SUB and a MUL of one constant per channel). With TensorFlow Lite's kernels' output, and
    `<file>-tflite.steps.npy` [3, 256]: the code the preprocessing gives in each channel for each of the 256 input
    codes, -128 to 127 (as float32), read from its last operator's output on an input whose first 256 pixels hold
    those codes in every channel. For issue 41."""
    import tensorflow as tf
    import tf_keras

    pixels = np.load(os.path.join(outdir, "input-64-pixels-nhwc.npy"))
    for name in ["keras2-tiny-rescaling", "keras2-tiny-normalization-adapted"]:
        model = tf_keras.models.load_model(os.path.join(outdir, name + ".h5"))
        path = os.path.join(outdir, name + "-int8.tflite")
        save_tflite(model, pixels, path, path[:-7] + "-tflite", quantize="full")
        interpreter = tf.lite.Interpreter(
            model_path=path,
            experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            experimental_preserve_all_tensors=True)
        interpreter.allocate_tensors()
        entry = interpreter.get_input_details()[0]
        codes = np.zeros(entry["shape"], np.int8)
        codes.reshape(-1, 3)[:256] = np.arange(-128, 128)[:, None]
        interpreter.set_tensor(entry["index"], codes)
        interpreter.invoke()
        ops = [op["op_name"] for op in interpreter._get_ops_details()]
        last = ops.index("PAD") - 1
        assert set(ops[:last + 1]) <= {"MUL", "ADD", "SUB"}, ops[:last + 1]
        output = interpreter._get_ops_details()[last]["outputs"][0]
        steps = interpreter.get_tensor(output).reshape(-1, 3)[:256].T
        np.save(path[:-7] + "-tflite.steps.npy", steps.astype(np.float32))


def tflite_uint8(outdir):
    """The full-integer conversion with a uint8 input and output (QUANTIZE from uint8 to int8 after the input and
    back before the output, the same scales, zero points 128 apart), with TensorFlow Lite's kernels' output."""
    import tf_keras

    model = tf_keras.models.load_model(os.path.join(outdir, "keras2-tiny.h5"))
    x = np.load(os.path.join(outdir, "input-64-nhwc.npy"))
    save_tflite(model, x, os.path.join(outdir, "keras2-tiny-uint8.tflite"),
                os.path.join(outdir, "keras2-tiny-uint8-tflite"), quantize="full-uint8")


def tflite_layouts(outdir):
    """tf.lite's conversions of the other tf_keras layouts DenseKit reads: a model's own preprocessing (Rescaling,
    an adapted Normalization: on 0..255 pixels), a backbone nested in a Sequential with a sigmoid head, a max pool
    and no pool; each with the interpreter's output."""
    import tf_keras

    pixels = np.load(os.path.join(outdir, "input-64-pixels-nhwc.npy"))
    x = np.load(os.path.join(outdir, "input-64-nhwc.npy"))
    for name, inputs in [("keras2-tiny-rescaling", pixels), ("keras2-tiny-normalization-adapted", pixels),
                         ("keras2-tiny-nested-sigmoid14", x), ("keras2-tiny-max", x), ("keras2-tiny-none", x)]:
        model = tf_keras.models.load_model(os.path.join(outdir, name + ".h5"))
        save_tflite(model, inputs, os.path.join(outdir, name + ".tflite"), os.path.join(outdir, name + "-tflite"))


def save_tflite(model, x, path, prefix, float16=False, quantize=None, converter=None):
    """Converts a tf_keras model (or with `converter`, e.g. one from a SavedModel) with tf.lite's converter; the
    interpreter's output as `prefix`.out.npy. quantize: "dynamic" (int8 weights), "full" (int8 throughout,
    calibrated on `x`) or "full-uint8" (the same with a uint8 input and output, as for an Edge TPU)."""
    import tensorflow as tf

    converter = converter or tf.lite.TFLiteConverter.from_keras_model(model)
    if float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize in ("full", "full-uint8"):
        io = tf.int8 if quantize == "full" else tf.uint8
        converter.representative_dataset = lambda: ([x[i:i + 1]] for i in range(len(x)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = io
        converter.inference_output_type = io
    data = converter.convert()
    with open(path, "wb") as f:
        f.write(data)
    # A quantised model runs on TensorFlow Lite's own kernels (fixed-point requantisation), not on the XNNPACK
    # delegate the interpreter applies by default, whose int8 arithmetic is its own.
    resolver = (tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if quantize
                else tf.lite.experimental.OpResolverType.AUTO)
    interpreter = tf.lite.Interpreter(
        model_content=data, experimental_op_resolver_type=resolver, experimental_preserve_all_tensors=bool(quantize))
    entry = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(entry["index"], x.shape)
    interpreter.allocate_tensors()
    if entry["dtype"] in (np.int8, np.uint8):  # full integer: the input quantised as the interpreter's users do
        scale, zero = entry["quantization"]
        limits = np.iinfo(entry["dtype"])
        x = np.clip(np.round(x / scale) + zero, limits.min, limits.max).astype(entry["dtype"])
    interpreter.set_tensor(entry["index"], x)
    interpreter.invoke()
    # An int8 (uint8) output is saved as its codes in float32 (exact), the type DenseKit's tests read.
    np.save(prefix + ".out.npy",
            interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).astype(np.float32))
    ops = interpreter._get_ops_details()
    if quantize == "full" and ops[-1]["op_name"] == "SOFTMAX":  # the int8 logits too, a finer check than the softmax
        np.save(prefix + ".logits.npy", interpreter.get_tensor(ops[-1]["inputs"][0]).astype(np.float32))
        # and each transition's output (its AVERAGE_POOL_2D, NHWC codes), checked layer by layer
        pools = [op for op in ops if op["op_name"] == "AVERAGE_POOL_2D"]
        for number, op in enumerate(pools, start=1):
            np.save(prefix + ".transition%d.npy" % number,
                    interpreter.get_tensor(op["outputs"][0]).astype(np.float32))

def head_cases(L):
    """Heads people put on an include_top=False DenseNet (layer names Keras chooses), by input size."""
    return [
        ("sigmoid14", 64, lambda x: L.Dense(14, activation="sigmoid")(L.GlobalAveragePooling2D()(x))),
        ("activation14", 64, lambda x: L.Activation("sigmoid")(L.Dense(14)(L.Dropout(0.3)(L.GlobalAveragePooling2D()(x))))),
        ("avg", 64, lambda x: L.GlobalAveragePooling2D(name="avg_pool")(x)),
        ("max", 64, lambda x: L.GlobalMaxPooling2D(name="max_pool")(x)),
        ("none", 64, lambda x: x),
        ("80-softmax5", 80, lambda x: L.Dense(5, activation="softmax")(L.GlobalAveragePooling2D()(x))),
        ("mlp", 64, lambda x: L.Dense(3, activation="tanh")(L.Dense(12, activation="relu")(L.GlobalMaxPooling2D()(x)))),
    ]


def heads(outdir):
    """Fine-tuned heads and feature extractors in every Keras 3 layout, and three in Keras 2's."""
    import keras
    import tf_keras
    from keras.src.applications import densenet as k3densenet
    from tf_keras.src.applications import densenet as k2densenet

    rng = np.random.default_rng(41)
    inputs = {64: np.load(os.path.join(outdir, "input-64-nhwc.npy"))}
    inputs[80] = rng.standard_normal((2, 80, 80, 3)).astype(np.float32)
    np.save(os.path.join(outdir, "input-80-nhwc.npy"), inputs[80])
    def save(k, densenet_mod, legacy, seed, name, size, head, prefix, save_layouts):
        k.utils.set_random_seed(seed)
        img, x = tiny_backbone(k.layers, densenet_mod, [2, 2, 2], 4, 8, (size, size, 3), legacy=legacy)
        model = k.Model(img, head(x))
        randomise_bn(model, rng)
        save_layouts(model, inputs[size], outdir, prefix + name)
        save_logits(model, k, inputs[size], os.path.join(outdir, "%s%s.logits.npy" % (prefix, name)))

    for i, case in enumerate(head_cases(keras.layers)):
        save(keras, k3densenet, False, 60 + i, *case, "keras3-tiny-", save_keras3)
    for i, case in enumerate(c for c in head_cases(tf_keras.layers) if c[0] in ("sigmoid14", "avg", "max", "none")):
        save(tf_keras, k2densenet, True, 70 + i, *case, "keras2-tiny-", save_keras2)


def nested(outdir):
    """The transfer-learning pattern: the backbone (include_top=False) as one layer of a Sequential or
    functional model, the user's head after it; and the nestings DenseKit refuses."""
    import keras
    import tf_keras
    from keras.src.applications import densenet as k3densenet
    from tf_keras.src.applications import densenet as k2densenet

    rng = np.random.default_rng(51)
    x = np.load(os.path.join(outdir, "input-64-nhwc.npy"))

    def backbone(k, densenet_mod, legacy, pooling=None, name="densenet121"):
        img, y = tiny_backbone(k.layers, densenet_mod, [2, 2, 2], 4, 8, (64, 64, 3), legacy=legacy)
        if pooling == "max":
            y = k.layers.GlobalMaxPooling2D(name="max_pool")(y)
        return k.Model(img, y, name=name)

    def sigmoid14(k, densenet_mod, legacy):
        L = k.layers
        return k.Sequential([L.Input((64, 64, 3)), backbone(k, densenet_mod, legacy), L.GlobalAveragePooling2D(),
                             L.Dense(14, activation="sigmoid")])

    for k, densenet_mod, legacy, seed, prefix, save_layouts in [
            (keras, k3densenet, False, 80, "keras3-tiny-nested-", save_keras3),
            (tf_keras, k2densenet, True, 81, "keras2-tiny-nested-", lambda *a: save_keras2(*a, onnx=False))]:
        k.utils.set_random_seed(seed)
        model = sigmoid14(k, densenet_mod, legacy)
        randomise_bn(model, rng)
        save_layouts(model, x, outdir, prefix + "sigmoid14")
        save_logits(model, k, x, os.path.join(outdir, prefix + "sigmoid14.logits.npy"))

    # keras.applications' pooling="max" inside the backbone, a functional model around it.
    keras.utils.set_random_seed(82)
    inp = keras.layers.Input((64, 64, 3))
    out = keras.layers.Dense(5, activation="softmax")(backbone(keras, k3densenet, False, pooling="max")(inp))
    model = keras.Model(inp, out)
    randomise_bn(model, rng)
    save_keras3(model, x, outdir, "keras3-tiny-nested-max5")
    save_logits(model, keras, x, os.path.join(outdir, "keras3-tiny-nested-max5.logits.npy"))

    # Refused: two backbones averaged, and a layer put between two blocks.
    keras.utils.set_random_seed(83)
    inp = keras.layers.Input((64, 64, 3))
    pooled = [keras.layers.GlobalAveragePooling2D()(backbone(keras, k3densenet, False, name=n)(inp))
              for n in ("densenet121", "densenet121_b")]
    keras.Model(inp, keras.layers.Dense(2)(keras.layers.Average()(pooled))).save(
        os.path.join(outdir, "keras3-tiny-two-backbones.keras"))
    img, y = tiny_backbone(keras.layers, k3densenet, [2], 4, 8, (64, 64, 3), legacy=False)
    inner = keras.Model(img, y).get_layer("conv2_block1_concat").output
    between = keras.layers.Activation("sigmoid", name="between_blocks")(inner)
    y = k3densenet.conv_block(between, 4, name="conv2_block2")
    y = keras.layers.Activation("relu", name="relu")(keras.layers.BatchNormalization(epsilon=1.001e-5, name="bn")(y))
    keras.Model(img, y).save(os.path.join(outdir, "keras3-tiny-between-blocks.keras"))


def preprocessing(outdir):
    """Rescaling and Normalization layers in front of the backbone (nested or flat), on 0..255 pixels;
    tf2onnx's export of one (Mul and Add on the NHWC input); and the preprocessing DenseKit refuses."""
    import keras
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx
    import tf_keras
    from keras.src.applications import densenet as k3densenet
    from tf_keras.src.applications import densenet as k2densenet

    rng = np.random.default_rng(61)
    x = rng.uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    np.save(os.path.join(outdir, "input-64-pixels-nhwc.npy"), x)

    def nested_model(k, densenet_mod, legacy, preprocess, seed):
        k.utils.set_random_seed(seed)
        img, y = tiny_backbone(k.layers, densenet_mod, [2, 2, 2], 4, 8, (64, 64, 3), legacy=legacy)
        inp = k.layers.Input((64, 64, 3))
        y = k.Model(img, y, name="densenet121")(preprocess(inp))
        model = k.Model(inp, k.layers.Dense(3)(k.layers.GlobalAveragePooling2D()(y)))
        randomise_bn(model, rng)
        return model

    def save(model, prefix, layouts):
        for layout in layouts:
            model.save(os.path.join(outdir, prefix + layout))
        np.save(os.path.join(outdir, prefix + ".out.npy"), model.predict(x, verbose=0))

    # Keras 3 and tf_keras: Rescaling to [-1, 1] before a nested backbone.
    model = nested_model(keras, k3densenet, False, lambda t: keras.layers.Rescaling(1 / 127.5, offset=-1)(t), 90)
    save(model, "keras3-tiny-rescaling", [".keras", ".h5"])
    model = nested_model(tf_keras, k2densenet, True, lambda t: tf_keras.layers.Rescaling(1 / 127.5, offset=-1)(t), 91)
    save(model, "keras2-tiny-rescaling", [".h5"])
    spec = (tf.TensorSpec((None, 64, 64, 3), tf.float32, name="input"),)
    path = os.path.join(outdir, "keras2-tiny-rescaling-tf2onnx.onnx")
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    np.save(path[:-5] + ".out.npy", sess.run(None, {"input": x})[0])

    # Keras 3: ImageNet's mean and variance given to Normalization, in a flat model.
    keras.utils.set_random_seed(92)
    mean = [0.485 * 255, 0.456 * 255, 0.406 * 255]
    variance = [(0.229 * 255) ** 2, (0.224 * 255) ** 2, (0.225 * 255) ** 2]
    img, y = tiny_backbone(keras.layers, k3densenet, [2, 2, 2], 4, 8, (64, 64, 3), legacy=False,
                           preprocess=lambda t: keras.layers.Normalization(mean=mean, variance=variance)(t))
    model = keras.Model(img, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(y)))
    randomise_bn(model, rng)
    save(model, "keras3-tiny-normalization", [".keras", ".h5"])

    # tf_keras: Rescaling to [0, 1], then a Normalization adapted to data (its mean and variance are weights).
    norm = tf_keras.layers.Normalization()
    norm.adapt(rng.uniform(0, 1, (16, 64, 64, 3)).astype(np.float32) * np.array([1.0, 0.8, 0.6], np.float32))
    model = nested_model(tf_keras, k2densenet, True, lambda t: norm(tf_keras.layers.Rescaling(1 / 255)(t)), 93)
    save(model, "keras2-tiny-normalization-adapted", [".h5"])
    tf2onnx_normalization(outdir)

    # Refused: a negative variance; a Rescaling after the backbone.
    model = nested_model(keras, k3densenet, False,
                         lambda t: keras.layers.Normalization(mean=[0.5, 0.5, 0.5], variance=[1.0, -1.0, 1.0])(t), 94)
    model.save(os.path.join(outdir, "keras3-tiny-negative-variance.keras"))
    keras.utils.set_random_seed(95)
    img, y = tiny_backbone(keras.layers, k3densenet, [2, 2, 2], 4, 8, (64, 64, 3), legacy=False)
    y = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(0.5)(y)))
    keras.Model(img, y).save(os.path.join(outdir, "keras3-tiny-rescaling-after.keras"))


def full(outdir):
    import keras
    import tf_keras

    os.makedirs(outdir, exist_ok=True)
    rng = np.random.default_rng(31)
    x = rng.standard_normal((1, 224, 224, 3)).astype(np.float32)
    np.save(os.path.join(outdir, "input-224-nhwc.npy"), x)
    keras.utils.set_random_seed(32)
    m3 = keras.applications.DenseNet121(weights=None)
    randomise_bn(m3, rng)
    save_keras3(m3, x, outdir, "keras3-densenet121")
    keras.utils.set_random_seed(33)
    m169 = keras.applications.DenseNet169(weights=None)
    save_keras3(m169, x, outdir, "keras3-densenet169")
    tf_keras.utils.set_random_seed(34)
    m2 = tf_keras.applications.DenseNet121(weights=None)
    randomise_bn(m2, rng)
    save_keras2(m2, x, outdir, "keras2-densenet121")
    save_tflite(m2, x, os.path.join(outdir, "keras2-densenet121.tflite"), os.path.join(outdir, "keras2-densenet121-tflite"))
    full_int8(outdir, m2, x)
    tf_keras.utils.set_random_seed(35)
    m2_169 = tf_keras.applications.DenseNet169(weights=None)
    m2_169.save(os.path.join(outdir, "keras2-densenet169.h5"))
    m2_169.save_weights(os.path.join(outdir, "keras2-densenet169-weights.h5"))
    np.save(os.path.join(outdir, "keras2-densenet169.out.npy"), m2_169.predict(x, verbose=0))
    full_heads(outdir, x, rng)
    full_nested(outdir, x, rng)


def full_int8(outdir, model=None, x=None):
    """tf.lite's full-integer and dynamic-range conversions of the full-size tf_keras DenseNet-121 (calibrated on the
    input), with TensorFlow Lite's kernels' outputs."""
    if model is None:
        import tf_keras

        model = tf_keras.models.load_model(os.path.join(outdir, "keras2-densenet121.h5"))
        x = np.load(os.path.join(outdir, "input-224-nhwc.npy"))
    for mode, name in [("full", "keras2-densenet121-int8"), ("dynamic", "keras2-densenet121-int8-dynamic")]:
        save_tflite(model, x, os.path.join(outdir, name + ".tflite"), os.path.join(outdir, name + "-tflite"),
                    quantize=mode)


def full_nested(outdir, x, rng):
    """Backbones nested in the user's model: DenseNet-121 in a Keras 2 Sequential (.h5) and a Keras 3 functional
    model with pooling="avg" (.keras); DenseNet-201 with pooling="avg" in a Keras 2 Sequential (weights only)."""
    import keras
    import tf_keras

    tf_keras.utils.set_random_seed(38)
    L = tf_keras.layers
    base = tf_keras.applications.DenseNet121(weights=None, include_top=False, input_shape=(224, 224, 3))
    model = tf_keras.Sequential([L.Input((224, 224, 3)), base, L.GlobalAveragePooling2D(),
                                 L.Dense(14, activation="sigmoid")])
    randomise_bn(model, rng)
    model.save(os.path.join(outdir, "keras2-densenet121-nested.h5"))
    np.save(os.path.join(outdir, "keras2-densenet121-nested.out.npy"), model.predict(x, verbose=0))

    # DenseNet-201 with pooling="avg" inside the backbone; its weights-only file keeps the nested group (and, as
    # every tf_keras weights file, lists no weightless layer inside it: a max pool there could not be told).
    tf_keras.utils.set_random_seed(40)
    base = tf_keras.applications.DenseNet201(weights=None, include_top=False, pooling="avg", input_shape=(224, 224, 3))
    model = tf_keras.Sequential([L.Input((224, 224, 3)), base, L.Dense(5, activation="softmax")])
    randomise_bn(model, rng)
    model.save_weights(os.path.join(outdir, "keras2-densenet201-nested-weights.h5"))
    np.save(os.path.join(outdir, "keras2-densenet201-nested.out.npy"), model.predict(x, verbose=0))
    save_logits(model, tf_keras, x, os.path.join(outdir, "keras2-densenet201-nested.logits.npy"))

    keras.utils.set_random_seed(39)
    base = keras.applications.DenseNet121(weights=None, include_top=False, pooling="avg", input_shape=(224, 224, 3))
    inp = keras.layers.Input((224, 224, 3))
    model = keras.Model(inp, keras.layers.Dense(3)(base(inp)))
    randomise_bn(model, rng)
    model.save(os.path.join(outdir, "keras3-densenet121-nested.keras"))
    np.save(os.path.join(outdir, "keras3-densenet121-nested.out.npy"), model.predict(x, verbose=0))


def full_heads(outdir, x, rng):
    """keras.applications' backbones (include_top=False) with heads of their own, at 224 and 256."""
    import keras

    keras.utils.set_random_seed(36)
    base = keras.applications.DenseNet121(weights=None, include_top=False, pooling="avg", input_shape=(224, 224, 3))
    chexnet = keras.Model(base.input, keras.layers.Dense(14, activation="sigmoid")(base.output))
    randomise_bn(chexnet, rng)
    chexnet.save(os.path.join(outdir, "keras3-densenet121-sigmoid14.keras"))
    np.save(os.path.join(outdir, "keras3-densenet121-sigmoid14.out.npy"), chexnet.predict(x, verbose=0))
    keras_meta(chexnet, os.path.join(outdir, "keras3-densenet121-sigmoid14.meta.json"))

    keras.utils.set_random_seed(37)
    x256 = rng.standard_normal((1, 256, 256, 3)).astype(np.float32)
    np.save(os.path.join(outdir, "input-256-nhwc.npy"), x256)
    base = keras.applications.DenseNet121(weights=None, include_top=False, input_shape=(256, 256, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(base.output)
    model = keras.Model(base.input, keras.layers.Dense(5, activation="softmax")(keras.layers.Dropout(0.2)(pooled)))
    randomise_bn(model, rng)
    model.save(os.path.join(outdir, "keras3-densenet121-256-softmax5.h5"))
    np.save(os.path.join(outdir, "keras3-densenet121-256-softmax5.out.npy"), model.predict(x256, verbose=0))
    keras_meta(model, os.path.join(outdir, "keras3-densenet121-256-softmax5.meta.json"))


if __name__ == "__main__":
    modes = {"tiny": tiny, "heads": heads, "nested": nested, "preprocessing": preprocessing, "tflite": tflite,
             "tflite-int8": tflite_int8, "tflite-uint8": tflite_uint8,
             "tflite-preprocessing-int8": tflite_preprocessing_int8, "tf2onnx-normalization": tf2onnx_normalization,
             "full": full, "full-int8": full_int8}
    if len(sys.argv) != 3 or sys.argv[1] not in modes:
        sys.exit(__doc__)
    modes[sys.argv[1]](sys.argv[2])
