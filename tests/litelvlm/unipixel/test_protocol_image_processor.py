"""UniPixel's vision input is the one its official pin makes: PolyU-ChenLab/UniPixel @5c8e941 pins
transformers 4.53.3 (``requirements.txt``) and loads ``AutoProcessor.from_pretrained(model_path,
use_fast=True, do_resize=False)`` (``unipixel/model/builder.py`` L21-23): the processor resizes nothing,
UniPixel's own ``fetch_image`` resizes each frame with PIL (``unipixel/dataset/utils.py`` L59-87
``smart_resize``, L99-147; the image padded to two frames, L322-324), and the image goes in as a video. Under
4.53.3 that video runs through ``Qwen2VLVideoProcessor`` (``models/qwen2_vl/video_processing_qwen2_vl.py``
L262-300: the fused rescale and normalise of ``image_processing_utils_fast.py`` L434-448 on the uint8 frames,
then the patches).

The official side below is written with PIL and torch directly, sharing no step with ``litelvlm.unipixel``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

MEAN, STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
#: ``dataset/utils.py``: IMAGE_FACTOR, MIN_PIXELS 128*28*28, and ``infer_seg.py`` L122's max_pixels for one
#: image
FACTOR, LO, HI = 28, 128 * 28 * 28, 256 * 28 * 28 * 16


def _size(h: int, w: int) -> tuple[int, int]:
    h_bar, w_bar = max(FACTOR, round(h / FACTOR) * FACTOR), max(FACTOR, round(w / FACTOR) * FACTOR)
    if h_bar * w_bar > HI:
        beta = math.sqrt((h * w) / HI)
        h_bar, w_bar = math.floor(h / beta / FACTOR) * FACTOR, math.floor(w / beta / FACTOR) * FACTOR
    elif h_bar * w_bar < LO:
        beta = math.sqrt(LO / (h * w))
        h_bar, w_bar = math.ceil(h * beta / FACTOR) * FACTOR, math.ceil(w * beta / FACTOR) * FACTOR
    return h_bar, w_bar


def official_pixel_values_videos(image: Image.Image) -> torch.Tensor:
    h, w = _size(image.height, image.width)
    frame = torch.from_numpy(np.array(image.convert("RGB").resize((w, h), Image.Resampling.BICUBIC))).permute(
        2, 0, 1)
    video = torch.stack([frame, frame])[None].to(torch.float32)                 # (1, T=2, C, H, W)
    mean = (torch.tensor(MEAN) * (1.0 / (1 / 255))).view(1, 1, 3, 1, 1)
    std = (torch.tensor(STD) * (1.0 / (1 / 255))).view(1, 1, 3, 1, 1)
    x = (video - mean) / std
    gh, gw = h // 14, w // 14
    x = x.view(1, 1, 2, 3, gh // 2, 2, 14, gw // 2, 2, 14).permute(0, 1, 4, 7, 5, 8, 3, 2, 6, 9)
    return x.reshape(gh * gw, 3 * 2 * 14 * 14)


@pytest.mark.parametrize("size", [(640, 480), (333, 517), (3, 2), (150, 1)])
def test_pixel_values_videos_are_the_official_pins(size):
    from litelvlm.unipixel.cost import random_processor
    from litelvlm.unipixel.protocol import prepare_inputs

    rng = np.random.default_rng(sum(size))
    image = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), mode="RGB")
    got = prepare_inputs(random_processor("tiny"), image, "the dog").inputs["pixel_values_videos"]
    want = official_pixel_values_videos(image)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=0, atol=0)
