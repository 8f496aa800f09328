"""onnx2tf's TensorFlow Lite conversions of the tiny torchvision export (tv-tiny-legacy-opset17.onnx): the path
PyTorch users take to TFLite (torch -> ONNX -> onnx2tf). float32 and float16, each with TensorFlow Lite's
interpreter's output on the shared input (input-64.npy, transposed to the NHWC the converted model takes).

Run by `make fixtures` in its own venv (onnx2tf pins its own onnx and ai-edge-litert), never by the tests.

usage: make_onnx2tf_fixtures.py OUTDIR
"""

import os
import shutil
import subprocess
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402


def main(outdir):
    import tensorflow as tf

    x = np.ascontiguousarray(np.load(os.path.join(outdir, "input-64.npy")).transpose(0, 2, 3, 1))
    folder = tempfile.mkdtemp()
    # onnx2tf rewrites the ONNX file it is given (its simplifier's output): it converts a copy.
    source = os.path.join(folder, "tv-tiny-legacy-opset17.onnx")
    shutil.copyfile(os.path.join(outdir, "tv-tiny-legacy-opset17.onnx"), source)
    subprocess.run([sys.executable, "-m", "onnx2tf.onnx2tf", "-i", source, "-o", folder], check=True,
                   stdout=subprocess.DEVNULL)
    for produced, name in [("float32", "tv-tiny-onnx2tf"), ("float16", "tv-tiny-onnx2tf-f16")]:
        path = os.path.join(outdir, name + ".tflite")
        shutil.copyfile(os.path.join(folder, "tv-tiny-legacy-opset17_%s.tflite" % produced), path)
        interpreter = tf.lite.Interpreter(model_path=path)
        entry = interpreter.get_input_details()[0]
        interpreter.resize_tensor_input(entry["index"], x.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(entry["index"], x)
        interpreter.invoke()
        np.save(os.path.join(outdir, name + ".out.npy"),
                interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
        print("wrote", path, file=sys.stderr)
    shutil.rmtree(folder)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
