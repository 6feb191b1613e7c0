"""The pixels of the families with a SAM 2 head (``pixels``: the vision tower's processor input and SAM 2's
pixels on the CPU, :class:`litelvlm.qwen.pixels.QwenPixels`, made on eval-grounding's loader threads):
``prepare_image`` of them equals ``prepare_image`` of the image, field by field and bit for bit, at odd sizes
on every backbone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from litelvlm.qwen.pixels import QwenPixels
from litelvlm.registry.families import load_pipeline

MODELS = ["sa2va-tiny-random:0", "sa2va-internvl3-tiny-random:0", "sa2va-qwen3-vl-tiny-random:0",
          "unipixel-tiny-random:0"]
#: (width, height): a COCO-like image, a thin wide one, a thin tall one
SIZES = [(640, 480), (333, 41), (37, 300)]


def _image(w: int, h: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(w * 7 + h).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, Image.Image):
        return a.size == b.size and a.mode == b.mode and a.tobytes() == b.tobytes()
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a):
        return all(_same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a) if f.compare)
    return a == b


@pytest.fixture(scope="module", params=MODELS)
def pipe(request):
    return load_pipeline(request.param)


def test_prepare_image_of_the_pixels_equals_prepare_image_of_the_image(pipe):
    for size in SIZES:
        image = _image(*size)
        pixels = pipe.pixels(image)
        assert isinstance(pixels, QwenPixels) and pixels.image is image
        assert pixels.sam.device.type == "cpu"
        got, want = pipe.prepare_image(pixels), pipe.prepare_image(image)
        fields = [f.name for f in dataclasses.fields(want) if f.compare]
        differ = [f for f in fields if not _same(getattr(got, f), getattr(want, f))]
        assert not differ, f"{pipe.name} at {size}: {differ}"


def test_the_paired_clip_traces_its_pixels_as_it_traces_the_image(pipe):
    """Once the paired CLIP is loaded the pixels carry its input too (the image padded to a square, on the
    CPU), and the CLIP-side selection's inputs from them equal those from the image bit for bit."""
    clip = pipe.clip   # loaded now
    for size in SIZES:
        image = _image(*size)
        pixels = pipe.pixels(image)
        want_pixels = clip.preprocess([image], pad_to_square=True, on_device=False)
        assert pixels.clip.device.type == "cpu" and torch.equal(pixels.clip, want_pixels)
        got = pipe.with_sentences(pipe.prepare_image(pixels), ["the thing on the left"]).selector_inputs()
        want = pipe.with_sentences(pipe.prepare_image(image), ["the thing on the left"]).selector_inputs()
        assert _same(got.clip.vision.hidden_states, want.clip.vision.hidden_states)
        assert _same(got.clip.text, want.clip.text) and torch.equal(got.weights, want.weights)
