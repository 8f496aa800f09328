"""Test images: photographs from scikit-image's wheel (its bundled sample data, downloaded from PyPI
by `make fixtures-images`, never committed) and variants made from them with Pillow and pypng, in
every encoding the decoders must handle.

usage: make_image_fixtures.py SCIKIT_IMAGE_WHEEL OUTDIR
       make_image_fixtures.py SCIKIT_IMAGE_WHEEL --demo DIR   (the few small images committed for make demo)

OUTDIR/photos/   the images a dataset diff runs over (RGB and gray JPEG and PNG, name order)
OUTDIR/variants/ progressive, CMYK and 4:4:4 JPEG; gray, gray+alpha, palette, RGBA, 16-bit RGB and
                 16-bit gray PNG; a 30x20 image; 1-bit PNG
"""

import os
import sys
import zipfile

import numpy as np
import png  # pypng: Pillow cannot write 16-bit RGB PNG
from PIL import Image

PHOTOS = ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "retina.jpg", "camera.png", "motorcycle_left.png"]


def main(wheel, outdir):
    photos = os.path.join(outdir, "photos")
    variants = os.path.join(outdir, "variants")
    os.makedirs(photos, exist_ok=True)
    os.makedirs(variants, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        for name in PHOTOS:
            with open(os.path.join(photos, name), "wb") as f:
                f.write(z.read("skimage/data/" + name))

    chelsea = Image.open(os.path.join(photos, "chelsea.png")).convert("RGB")
    coffee = Image.open(os.path.join(photos, "coffee.png")).convert("RGB")
    astronaut = Image.open(os.path.join(photos, "astronaut.png")).convert("RGB")
    camera = Image.open(os.path.join(photos, "camera.png"))

    chelsea.save(os.path.join(variants, "chelsea-progressive.jpg"), quality=90, progressive=True)
    coffee.save(os.path.join(variants, "coffee-444.jpg"), quality=95, subsampling=0)
    coffee.save(os.path.join(variants, "coffee-420.jpg"), quality=75, subsampling=2)
    chelsea.convert("CMYK").save(os.path.join(variants, "chelsea-cmyk.jpg"), quality=95)
    camera.convert("L").save(os.path.join(variants, "camera-gray.jpg"), quality=90)
    camera.convert("L").save(os.path.join(variants, "camera-gray.png"))
    rgba = astronaut.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(astronaut.size))
    rgba.save(os.path.join(variants, "astronaut-rgba.png"))
    la = astronaut.convert("L")
    la.putalpha(Image.linear_gradient("L").rotate(90).resize(astronaut.size))
    la.save(os.path.join(variants, "astronaut-gray-alpha.png"))
    coffee.quantize(colors=200).save(os.path.join(variants, "coffee-palette.png"))
    chelsea.resize((30, 20), Image.BILINEAR).save(os.path.join(variants, "chelsea-30x20.png"))
    camera.convert("1").save(os.path.join(variants, "camera-1bit.png"))

    # 16-bit RGB: 257 x the 8-bit value plus a low byte, so the high byte is the photo again.
    a = np.asarray(astronaut, dtype=np.uint16)
    rgb16 = a * 256 + ((a * 37) % 256)
    with open(os.path.join(variants, "astronaut-rgb16.png"), "wb") as f:
        png.Writer(width=a.shape[1], height=a.shape[0], bitdepth=16, greyscale=False).write(f, rgb16.reshape(a.shape[0], -1).tolist())
    g = np.asarray(camera.convert("L"), dtype=np.uint16)
    with open(os.path.join(variants, "camera-gray16.png"), "wb") as f:
        png.Writer(width=g.shape[1], height=g.shape[0], bitdepth=16, greyscale=True).write(f, (g * 256 + 128).tolist())
    print("wrote", photos, "and", variants, file=sys.stderr)


def demo(wheel, outdir):
    """Three photographs scaled to 128 pixels on the longer side (a few kilobytes each)."""
    import io

    os.makedirs(outdir, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        for name, fmt in (("chelsea.png", "JPEG"), ("coffee.png", "JPEG"), ("astronaut.png", "PNG")):
            img = Image.open(io.BytesIO(z.read("skimage/data/" + name))).convert("RGB")
            img.thumbnail((128, 128), Image.BILINEAR)
            img.save(os.path.join(outdir, name.split(".")[0] + (".jpg" if fmt == "JPEG" else ".png")), fmt, quality=85)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[2] == "--demo":
        demo(sys.argv[1], sys.argv[3])
    elif len(sys.argv) == 3:
        main(sys.argv[1], sys.argv[2])
    else:
        sys.exit(__doc__)
