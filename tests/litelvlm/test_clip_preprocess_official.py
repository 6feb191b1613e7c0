"""CLIP image preprocessing of ``--clip-preprocess official`` against the official transformers 4.28 code.

Official code: sejong-rcv/LiteLVLM @5896153, ``dataset/segm_datasets/RefCOCO_Segm_ds.py`` L36
(``CLIPImageProcessor.from_pretrained(global_image_encoder)``) and L160-163 (``cv2.imread``,
BGR->RGB, ``global_enc_processor.preprocess(image)`` on that uint8 (H, W, 3) array), then
``eval/referring_seg/infer_and_evaluate.py`` L399-400 (``.to(dtype=torch.bfloat16)``). The
processor is transformers' pinned development build cae78c46 (4.28.0.dev0); the transcription below
follows the nearest release, **v4.28.1**, ``src/transformers/models/clip/image_processing_clip.py``
and ``src/transformers/image_transforms.py`` (line numbers cited per step). The golden hashes in
``tests/golden/official_clip_preprocess.json`` come from the real transformers 4.28.1 with the
official pins pillow 9.4.0 and numpy 1.24.2 (``tests/golden/make_official_clip_preprocess.py``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm.errors import LiteLVLMError
from tests.fixtures.images import array_sha256 as _sha

GOLDEN = json.loads((Path(__file__).parents[1] / "golden" / "official_clip_preprocess.json").read_text())
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]  # OPENAI_CLIP_MEAN / STD (image_utils.py, v4.28.1)
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def _synthetic(h: int, w: int) -> np.ndarray:
    """As ``make_official_clip_preprocess.synthetic`` (numpy's legacy stream is fixed across versions)."""
    return np.random.RandomState(h * 10_007 + w).randint(0, 256, size=(h, w, 3)).astype(np.uint8)


def _official_clip_preprocess(image: np.ndarray, size: int = 336, crop: int = 336) -> np.ndarray:
    """``CLIPImageProcessor.preprocess`` L316-334 (image_processing_clip.py, v4.28.1) on one uint8
    (H, W, 3) array, returning float32 (3, crop, crop). The array is channels-last, as 4.28 infers
    for every height but 1 and 3 (image_utils.py L161-164, which take those for channels-first)."""
    # L320 to_numpy_array: a no-op on an array.  L323 -> resize L146-150:
    # get_resize_output_image_size (image_transforms.py L243-258), default_to_square=False
    height, width = image.shape[:2]
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    out_h, out_w = (new_long, new_short) if width <= height else (new_short, new_long)
    # resize (image_transforms.py L300-323): uint8 -> no rescale (L128-129), PIL, .resize((w, h), BICUBIC)
    pil = Image.fromarray(image.astype(np.uint8))
    resized = np.array(pil.resize((out_w, out_h), resample=Image.Resampling.BICUBIC, reducing_gap=None))
    # L326 -> center_crop (image_transforms.py L440-458): floor offsets, crop in (C, H, W)
    chw = resized.transpose(2, 0, 1)
    top, left = (out_h - crop) // 2, (out_w - crop) // 2
    chw = chw[..., top:top + crop, left:left + crop].transpose(1, 2, 0)
    # L329 -> rescale (image_transforms.py L114-117): uint8 * (1 / 255) in float64, then float32
    x = (chw * (1 / 255)).astype(np.float32)
    # L332 -> normalize (image_transforms.py L372-382): mean/std cast to the image's float32
    x = (x - np.array(CLIP_MEAN, dtype=x.dtype)) / np.array(CLIP_STD, dtype=x.dtype)
    # L334: channels first
    return np.ascontiguousarray(x.transpose(2, 0, 1))


@pytest.fixture(scope="module")
def clip336(tiny336_clip):
    return tiny336_clip


def _images(shared: Path) -> list[Path]:
    return sorted((shared / "coco128_refer" / "images").glob("*.jpg"))


@pytest.mark.parametrize("case", GOLDEN["synthetic"], ids=lambda c: "x".join(map(str, c["hw"])))
def test_transcription_and_official_path_equal_transformers_4_28_on_odd_sizes(case, clip336):
    image = _synthetic(*case["hw"])
    assert _sha(image) == case["input_sha256"]
    ref = _official_clip_preprocess(image)
    assert _sha(ref) == case["pixel_values_sha256"]
    ours = clip336.preprocess([Image.fromarray(image)], processor="official")
    assert ours.dtype == torch.float32 and ours.shape == (1, 3, 336, 336)
    assert _sha(ours[0].numpy()) == case["pixel_values_sha256"]


def test_official_path_is_bit_identical_on_the_real_images(shared_data, clip336):
    from litelvlm.data.refer import open_rgb

    paths = _images(shared_data)
    assert len(paths) == len(GOLDEN["images"]) == 128
    transformers_equal = 0
    for path in paths:
        golden = GOLDEN["images"][path.name]
        image = open_rgb(path)
        ref = _official_clip_preprocess(np.asarray(image))
        ours = clip336.preprocess([image], processor="official")[0]
        assert _sha(ref) == _sha(ours.numpy()) == golden["pixel_values_sha256"], path.name
        # the official evaluation then casts to bfloat16: equal inputs, equal casts
        assert torch.equal(ours.bfloat16(), torch.from_numpy(ref).bfloat16())
        transformers_equal += torch.equal(clip336.preprocess([image])[0], ours)
    assert transformers_equal == 0  # the torchvision-backed processor differs on every image


def test_transformers_path_is_the_loaded_processor_unchanged(clip336):
    image = Image.fromarray(_synthetic(427, 640))
    expected = clip336.processor(images=[image], return_tensors="pt")["pixel_values"]
    assert torch.equal(clip336.preprocess([image]), expected)
    assert torch.equal(clip336.preprocess([image], processor="transformers"), expected)
    official = clip336.preprocess([image], processor="official")
    assert not torch.equal(official, expected) and (official - expected).abs().max() < 0.1
    with pytest.raises(LiteLVLMError, match="must be one of official, transformers"):
        clip336.preprocess([image], processor="pil")


def test_pipeline_prepares_images_with_its_numerics_preprocessing():
    from litelvlm.glamm import GlammPipeline

    pipe = GlammPipeline.from_model_string("tiny-random:0")
    assert pipe.numerics.clip_preprocess == "official"
    image = Image.fromarray(_synthetic(427, 640))
    for choice in ("official", "transformers"):
        pipe.numerics = dataclasses.replace(pipe.numerics, clip_preprocess=choice)
        prepared = pipe.prepare_image(image)
        direct = pipe.clip.trace_image(pipe.clip.preprocess([image], processor=choice))
        assert torch.equal(prepared.vision.hidden_states[0], direct.hidden_states[0]), choice
    official = pipe.clip.trace_image(pipe.clip.preprocess([image], processor="official"))
    assert not torch.equal(prepared.vision.hidden_states[0], official.hidden_states[0])
