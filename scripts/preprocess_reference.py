"""The frameworks' own preprocessing of image files, for the tests to compare `densekit preprocess` with.

usage: preprocess_reference.py torchvision|keras-densenet|caffe|caffe-zoo SIZE OUT.npy IMAGE...

- torchvision (torch venv): PIL open + convert("RGB"), then torchvision.transforms.Compose([
  Resize(int(SIZE / 0.875)), CenterCrop(SIZE), ToTensor(), Normalize(ImageNet mean, std)]), NCHW.
- keras-densenet (TF venv): keras.utils.load_img(path, target_size=(SIZE, SIZE)), img_to_array,
  keras.applications.densenet.preprocess_input, NHWC.
- caffe (torch venv, Pillow and numpy): PIL convert("RGB"), resize to int(SIZE / 0.875) square
  (bilinear), the centre SIZE square, BGR, minus (103.939, 116.779, 123.68), NCHW.
- caffe-zoo: the same, minus (103.94, 116.78, 123.68), then x 0.017 (the ONNX model zoo's Caffe-born
  DenseNet-121, onnx/models #125).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402


def torchvision_batch(size, files):
    import torchvision.transforms as T
    from PIL import Image

    transform = T.Compose([T.Resize(int(size / 0.875)), T.CenterCrop(size), T.ToTensor(),
                           T.Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))])
    return np.stack([transform(Image.open(f).convert("RGB")).numpy() for f in files])


def keras_batch(size, files):
    import keras
    from keras.applications import densenet

    arrays = [keras.utils.img_to_array(keras.utils.load_img(f, target_size=(size, size))) for f in files]
    return densenet.preprocess_input(np.stack(arrays))


def caffe_batch(size, files, mean=(103.939, 116.779, 123.68), scale=1.0):
    from PIL import Image

    side = int(size / 0.875)
    out = []
    for f in files:
        img = Image.open(f).convert("RGB").resize((side, side), Image.BILINEAR)
        top = int(round((side - size) / 2.0))
        x = np.asarray(img, dtype=np.float32)[top:top + size, top:top + size, ::-1]
        out.append(((x - np.array(mean, dtype=np.float32)) * np.float32(scale)).transpose(2, 0, 1))
    return np.stack(out)


if __name__ == "__main__":
    if len(sys.argv) < 5 or sys.argv[1] not in ("torchvision", "keras-densenet", "caffe", "caffe-zoo"):
        sys.exit(__doc__)
    preset, size, out, files = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
    batch = {"torchvision": torchvision_batch, "keras-densenet": keras_batch, "caffe": caffe_batch,
             "caffe-zoo": lambda s, f: caffe_batch(s, f, (103.94, 116.78, 123.68), 0.017)}[preset](size, files)
    np.save(out, batch.astype(np.float32))
