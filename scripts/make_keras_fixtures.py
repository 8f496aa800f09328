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
       make_keras_fixtures.py full OUTDIR
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402

import fixture_meta  # noqa: E402


def randomise_bn(model, rng):
    """Non-trivial BN statistics and classifier bias so that their handling shows in the outputs."""
    for layer in model.layers:
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


def tiny_densenet(k, layers_mod, densenet_mod, blocks, growth, stem_filters, input_shape, classes, legacy):
    """keras.applications.densenet.DenseNet with a configurable growth rate and stem width."""
    img = layers_mod.Input(shape=input_shape)
    bn_axis = 3
    x = layers_mod.ZeroPadding2D(padding=((3, 3), (3, 3)))(img)
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
    x = layers_mod.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers_mod.Dense(classes, activation="softmax", name="predictions")(x)
    return k.Model(img, x, name="densenet")


def keras_meta(model, path):
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    fixture_meta.write(path, trainable, model.count_params(), fixture_meta.keras_samples(model))


def save_keras3(model, x, outdir, prefix):
    model.save(os.path.join(outdir, prefix + ".keras"))
    model.save(os.path.join(outdir, prefix + ".h5"))
    model.save_weights(os.path.join(outdir, prefix + ".weights.h5"))
    np.save(os.path.join(outdir, prefix + ".out.npy"), model.predict(x, verbose=0))
    keras_meta(model, os.path.join(outdir, prefix + ".meta.json"))


def save_keras2(model, x, outdir, prefix):
    import onnxruntime as ort
    import tensorflow as tf
    import tf2onnx

    model.save(os.path.join(outdir, prefix + ".h5"))
    model.save_weights(os.path.join(outdir, prefix + "-weights.h5"))
    np.save(os.path.join(outdir, prefix + ".out.npy"), model.predict(x, verbose=0))
    keras_meta(model, os.path.join(outdir, prefix + ".meta.json"))
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
    tf_keras.utils.set_random_seed(35)
    m2_169 = tf_keras.applications.DenseNet169(weights=None)
    m2_169.save(os.path.join(outdir, "keras2-densenet169.h5"))
    m2_169.save_weights(os.path.join(outdir, "keras2-densenet169-weights.h5"))
    np.save(os.path.join(outdir, "keras2-densenet169.out.npy"), m2_169.predict(x, verbose=0))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("tiny", "full"):
        sys.exit(__doc__)
    {"tiny": tiny, "full": full}[sys.argv[1]](sys.argv[2])
