"""Write ``official_clip_preprocess.json``: how the official stack decodes images and preprocesses them for
CLIP.

Run in an environment with the versions sejong-rcv/LiteLVLM @5896153 pins in ``requirements.txt``
(``numpy==1.24.2``, ``opencv-python==4.8.0.74``, ``pillow==9.4.0``; transformers is pinned to the
development build ``cae78c46`` (4.28.0.dev0), whose nearest release is 4.28.1), NOT the project's own::

    python3.10 -m venv /tmp/ref428c
    /tmp/ref428c/bin/pip install transformers==4.28.1 numpy==1.24.2 pillow==9.4.0
    opencv-python-headless==4.8.0.74 /tmp/ref428c/bin/python tests/golden/make_official_clip_preprocess.py
    ../shared/data

What it records, as the official code does it (``dataset/segm_datasets/RefCOCO_Segm_ds.py`` L36 and
L160-163: ``CLIPImageProcessor.from_pretrained(global_image_encoder)``, ``cv2.imread`` then
``cv2.cvtColor(image, cv2.COLOR_BGR2RGB)``, ``global_enc_processor.preprocess(image)`` on that uint8
array):

- ``images``: for each image of ``coco128_refer/images``, the EXIF orientation tag (or null), the shape
  and SHA-256 of the RGB array ``cv2.imread`` decodes, and the SHA-256 of the float32 ``pixel_values``
  (C, H, W) the real transformers 4.28.1 ``CLIPImageProcessor`` makes of it;
- ``synthetic``: the same for uint8 arrays of odd sizes drawn from ``numpy.random.RandomState``;
- ``exif``: eight small JPEGs (base64), one per EXIF orientation 1-8, with the shape and SHA-256 of
  what ``cv2.imread`` + BGR->RGB decodes from each.

``tests/litelvlm/test_clip_preprocess_official.py`` and ``tests/litelvlm/data/test_refer_image_decoding.py``
check the project against it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import PIL
import transformers
from PIL import Image
from transformers import CLIPImageProcessor

#: openai/clip-vit-large-patch14-336's preprocessor_config.json (size and crop 336, bicubic, CLIP mean/std)
PROCESSOR = CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336})
#: (height, width) of the synthetic cases: tiny, COCO-like, at and around the crop, very wide, very tall
SYNTHETIC_SIZES = [(2, 2), (5, 7), (7, 5), (336, 336), (337, 335), (427, 640), (640, 427), (16, 900),
                   (900, 16)]
EXIF_ORIENTATION = 0x0112


def sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def synthetic(h: int, w: int) -> np.ndarray:
    """The uint8 (h, w, 3) test array of one size (numpy's legacy stream is fixed across versions)."""
    return np.random.RandomState(h * 10_007 + w).randint(0, 256, size=(h, w, 3)).astype(np.uint8)


def pixel_values(rgb: np.ndarray) -> np.ndarray:
    out = PROCESSOR.preprocess(rgb, return_tensors="np")["pixel_values"][0]
    assert out.dtype == np.float32 and out.shape == (3, 336, 336), (out.dtype, out.shape)
    return out


def cv2_rgb(path: str) -> np.ndarray:
    image = cv2.imread(path)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def orientation_jpeg(orientation: int) -> bytes:
    """A 24 x 16 JPEG whose four corners differ, tagged with ``orientation``."""
    y, x = np.mgrid[0:16, 0:24]
    rgb = np.stack([x * 10, y * 15, (x < 12) * 100 + (y < 8) * 120], axis=-1).astype(np.uint8)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()


def main(shared: Path) -> None:
    images = {}
    for path in sorted((shared / "coco128_refer" / "images").glob("*.jpg")):
        with Image.open(path) as im:
            tag = im.getexif().get(EXIF_ORIENTATION)
        rgb = cv2_rgb(str(path))
        images[path.name] = {"exif_orientation": tag, "decoded_shape": list(rgb.shape),
                             "decoded_sha256": sha(rgb), "pixel_values_sha256": sha(pixel_values(rgb))}
    synth = []
    for h, w in SYNTHETIC_SIZES:
        rgb = synthetic(h, w)
        synth.append({"hw": [h, w], "input_sha256": sha(rgb), "pixel_values_sha256": sha(pixel_values(rgb))})
    exif = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(1, 9):
            data = orientation_jpeg(k)
            path = Path(tmp) / f"o{k}.jpg"
            path.write_bytes(data)
            rgb = cv2_rgb(str(path))
            exif.append({"orientation": k, "jpeg_base64": base64.b64encode(data).decode(),
                         "cv2_shape": list(rgb.shape), "cv2_sha256": sha(rgb)})
    out = {"versions": {"transformers": transformers.__version__, "pillow": PIL.__version__,
                        "opencv": cv2.__version__, "numpy": np.__version__},
           "images": images, "synthetic": synth, "exif": exif}
    Path(__file__).with_name("official_clip_preprocess.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
