"""Image decoding as the official dataset does it, and a clear error when an image does not fit its
annotations.

Official code: sejong-rcv/LiteLVLM @5896153, ``dataset/segm_datasets/RefCOCO_Segm_ds.py`` L160-162:
``image = cv2.imread(image_path)`` then ``cv2.cvtColor(image, cv2.COLOR_BGR2RGB)``. ``cv2.imread``
(``IMREAD_COLOR``) turns a JPEG as its EXIF orientation tag says; ``PIL.Image.open`` alone does not.
The expected decodings in ``tests/golden/official_clip_preprocess.json`` come from the official pin
opencv-python 4.8.0.74 (headless build), run by ``tests/golden/make_official_clip_preprocess.py``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from litelvlm.data.refer import ReferRecord, exif_orientation, open_rgb
from litelvlm.errors import LiteLVLMError
from tests.fixtures.images import array_sha256 as _sha

GOLDEN = json.loads((Path(__file__).parents[2] / "golden" / "official_clip_preprocess.json").read_text())


def _write(tmp_path: Path, case: dict) -> Path:
    path = tmp_path / f"orientation{case['orientation']}.jpg"
    path.write_bytes(base64.b64decode(case["jpeg_base64"]))
    return path


@pytest.mark.parametrize("case", GOLDEN["exif"], ids=lambda c: f"orientation{c['orientation']}")
def test_open_rgb_decodes_each_exif_orientation_as_cv2_imread(case, tmp_path):
    path = _write(tmp_path, case)
    assert exif_orientation(path) == case["orientation"]
    image = np.asarray(open_rgb(path))
    assert list(image.shape) == case["cv2_shape"] and _sha(image) == case["cv2_sha256"]
    stored = np.asarray(open_rgb(path, exif_transpose=False))
    assert stored.shape == (16, 24, 3)  # the stored layout, whatever the tag
    assert (_sha(stored) == case["cv2_sha256"]) == (case["orientation"] == 1)


def test_open_rgb_decodes_the_real_images_as_cv2_imread(shared_data):
    paths = sorted((shared_data / "coco128_refer" / "images").glob("*.jpg"))
    assert len(paths) == 128
    tagged = 0
    for path in paths:
        golden = GOLDEN["images"][path.name]
        image = np.asarray(open_rgb(path))
        assert list(image.shape) == golden["decoded_shape"] and _sha(image) == golden[
            "decoded_sha256"], path.name
        tagged += exif_orientation(path) is not None
        assert exif_orientation(path) == golden["exif_orientation"]
    assert tagged == 0  # none of the 128 shared images carries an orientation tag


def _record(path: Path, width: int, height: int) -> ReferRecord:
    return ReferRecord(image_path=path, image_id=1, ref_id=1, ann_id=1, sent_id=1, sentence="thing",
                       category="thing", category_id=1, split="val", height=height, width=width)


def test_an_image_that_does_not_fit_its_annotations_is_a_clear_error(tmp_path):
    path = _write(tmp_path, GOLDEN["exif"][5])  # orientation 6: stored 24 x 16, shown 16 x 24
    assert _record(path, 16, 24).image().size == (16, 24)
    with pytest.raises(LiteLVLMError, match=r"orientation6\.jpg.*decodes to 16 x 24 .*annotations are for 24 "
                                            r"x 16; its EXIF orientation tag is 6, which the decoding "
                                            r"applied"):
        _record(path, 24, 16).image()
    assert _record(path, 24, 16).image(exif_transpose=False).size == (24, 16)
    plain = tmp_path / "plain.png"
    Image.new("RGB", (640, 480)).save(plain)
    with pytest.raises(LiteLVLMError, match=r"plain\.png.*decodes to 640 x 480 .*annotations are for 480 x "
                       r"640: "):
        _record(plain, 480, 640).image()


def test_eval_grounding_refuses_a_mismatched_image_before_scoring(tmp_path):
    from analysis.common.grounding.grounding_scoring import evaluate_image

    plain = tmp_path / "plain.png"
    Image.new("RGB", (640, 480)).save(plain)
    rec = _record(plain, 480, 640)
    untimed = SimpleNamespace(stage_costs=False, time_pruning=False)   # no other option is read before it
    with pytest.raises(LiteLVLMError, match=r"plain\.png.*is 640 x 480 .*annotations are for 480 x 640"):
        evaluate_image(None, untimed, [rec], Image.open(plain), [])
