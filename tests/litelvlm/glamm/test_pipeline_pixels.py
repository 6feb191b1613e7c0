"""GLaMM's pixels (``GlammPipeline.pixels``: the CPU part of an image's preparation, CLIP's preprocessing and
SAM's longest-side resize, which a loader thread runs ahead of the model): ``prepare_image`` of them equals
``prepare_image`` of the image bit for bit, at odd sizes and in both dtypes, and they stay on the CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

#: (width, height): a COCO-like image, a thin wide one, a thin tall one
SIZES = [(640, 480), (333, 41), (7, 300)]


def _image(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed + w * 7 + h)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _equal(a, b) -> None:
    assert a.image_size == b.image_size and a.sam_reshaped_size == b.sam_reshaped_size
    assert torch.equal(a.sam_embeddings, b.sam_embeddings)
    assert len(a.vision.hidden_states) == len(b.vision.hidden_states)
    assert all(torch.equal(x, y) for x, y in zip(a.vision.hidden_states, b.vision.hidden_states, strict=True))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_prepare_image_of_the_pixels_equals_prepare_image_of_the_image(size, dtype, tiny_glamm,
                                                                       tiny_glamm_bf16):
    pipe = tiny_glamm if dtype == "float32" else tiny_glamm_bf16
    image = _image(*size)
    pixels = pipe.pixels(image)
    _equal(pipe.prepare_image(pixels), pipe.prepare_image(image))
    # CPU tensors in float32 (moved and cast on the model's thread), whatever the model's dtype
    assert pixels.clip.device.type == "cpu" and pixels.clip.dtype == torch.float32
    assert pixels.sam.device.type == "cpu" and pixels.sam.dtype == torch.uint8
    assert pixels.image.size == image.size


def test_the_pixels_of_a_grey_image_are_of_its_rgb_copy(tiny_glamm):
    image = _image(50, 40).convert("L")
    _equal(tiny_glamm.prepare_image(tiny_glamm.pixels(image)), tiny_glamm.prepare_image(image))
