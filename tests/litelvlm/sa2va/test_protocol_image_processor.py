"""Sa2VA's image processor is the one its official pin instantiates: under transformers 4.57.0 (Sa2VA's
``pyproject.toml``, extra ``latest``) with torchvision installed, ``AutoProcessor.from_pretrained`` gives
``Qwen2VLImageProcessorFast``, whose resize is torchvision's bicubic with antialias on the uint8 tensor.

The official side here is written out with PIL, torch and torchvision directly, sharing no step with
``litelvlm.sa2va.protocol``:

* qwen-vl-utils ``vision_process.py`` ``smart_resize`` and ``fetch_image`` (PIL ``resize`` with its default,
  bicubic), as ``predict_forward`` calls them through ``process_vision_info`` (bytedance/Sa2VA @9832e1a
  ``projects/sa2va/hf/models_qwen2_5_vl/modeling_sa2va_qwen.py`` L205-214);
* transformers 4.57.0 ``models/auto/image_processing_auto.py`` L52 (``FORCE_FAST_IMAGE_PROCESSOR =
  ["Qwen2VLImageProcessor"]``) and L528-531 (the fast class when ``use_fast`` is unset and torchvision is
  there);
* transformers 4.57.0 ``models/qwen2_vl/image_processing_qwen2_vl.py`` L54-80 (``smart_resize``),
  ``image_processing_qwen2_vl_fast.py`` L122-123 (``min_pixels``/``max_pixels`` of the call become the size),
  L182-260 (resize, fused rescale-and-normalize, patches), ``image_processing_utils_fast.py`` L62 (torchvision
  v2 functional), L363 (``F.resize(..., antialias=True)``), L434-448 (the fused mean and std), L582
  (``pil_to_tensor``).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from PIL import Image

MEAN, STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


def _qwen_vl_utils_size(h: int, w: int, factor=28, lo=4 * 28 * 28, hi=16384 * 28 * 28) -> tuple[int, int]:
    h_bar, w_bar = max(factor, round(h / factor) * factor), max(factor, round(w / factor) * factor)
    if h_bar * w_bar > hi:
        beta = math.sqrt((h * w) / hi)
        h_bar, w_bar = math.floor(h / beta / factor) * factor, math.floor(w / beta / factor) * factor
    elif h_bar * w_bar < lo:
        beta = math.sqrt(lo / (h * w))
        h_bar, w_bar = math.ceil(h * beta / factor) * factor, math.ceil(w * beta / factor) * factor
    return h_bar, w_bar


def _transformers_457_size(h: int, w: int, lo: int, hi: int, factor=28) -> tuple[int, int]:
    h_bar, w_bar = round(h / factor) * factor, round(w / factor) * factor
    if h_bar * w_bar > hi:
        beta = math.sqrt((h * w) / hi)
        h_bar = max(factor, math.floor(h / beta / factor) * factor)
        w_bar = max(factor, math.floor(w / beta / factor) * factor)
    elif h_bar * w_bar < lo:
        beta = math.sqrt(lo / (h * w))
        h_bar, w_bar = math.ceil(h * beta / factor) * factor, math.ceil(w * beta / factor) * factor
    return h_bar, w_bar


def official_pixel_values(image: Image.Image, lo: int, hi: int, fast: bool = True, patch: int = 14,
                          mean=MEAN, std=STD) -> torch.Tensor:
    """``fetch_image`` then ``Qwen2VLImageProcessorFast`` (``fast=False``: the slow processor's PIL
    resize); ``patch``, ``mean``, ``std``: the processor's (Qwen3-VL's: 16 and 0.5, the resize factor then 32,
    ``models_qwen3vl/modeling_sa2va_qwen.py`` L197-206)."""
    from torchvision.transforms.v2 import functional as F

    image = image.convert("RGB")
    h1, w1 = _qwen_vl_utils_size(image.height, image.width)
    image = image.resize((w1, h1))                                   # PIL's default filter: bicubic
    h2, w2 = _transformers_457_size(h1, w1, lo, hi, factor=2 * patch)
    if fast:
        x = F.resize(F.pil_to_tensor(image)[None], [h2, w2], interpolation=F.InterpolationMode.BICUBIC,
                     antialias=True)
    else:
        x = torch.from_numpy(np.array(image.resize((w2, h2), Image.Resampling.BICUBIC))).permute(2, 0, 1)[
            None]
    mean, std = torch.tensor(mean) * (1.0 / (1 / 255)), torch.tensor(std) * (1.0 / (1 / 255))
    x = F.normalize(x.to(torch.float32), mean.tolist(), std.tolist()).unsqueeze(1)
    x = torch.cat([x, x[:, -1:].repeat(1, 1, 1, 1, 1)], dim=1)       # temporal_patch_size 2
    gh, gw = h2 // patch, w2 // patch
    x = x.view(1, 1, 2, 3, gh // 2, 2, patch, gw // 2, 2, patch).permute(0, 1, 4, 7, 5, 8, 3, 2, 6, 9)
    return x.reshape(gh * gw, 3 * 2 * patch * patch)


def _image(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(rng.integers(-9, 10, size=(h, w, 3)), axis=1)   # edges and gradients both
    return Image.fromarray(np.clip(smooth + 128, 0, 255).astype(np.uint8), mode="RGB")


@functools.cache
def _image_processor():
    """The image processor a Sa2VA folder's ``Qwen2_5_VLProcessor`` holds (transformers 5's default,
    torchvision backend; the whole loaded pipeline is compared in ``tests/litelvlm/test_sa2va.py``)."""
    from transformers import Qwen2VLImageProcessor

    from litelvlm.qwen.config import preprocessor_config

    return Qwen2VLImageProcessor(**{k: v for k, v in preprocessor_config("tiny").items()
                                    if k not in ("image_processor_type", "processor_class")}, do_resize=False)


def ours(image: Image.Image, lo: int, hi: int, resize: str = "torchvision") -> torch.Tensor:
    from litelvlm.sa2va.protocol import llm_image

    seen = llm_image(image, lo, hi, resize)
    return _image_processor()(images=[seen], do_resize=False, return_tensors="pt")["pixel_values"]


RELEASED = (512 * 28 * 28, 2048 * 28 * 28)
TINY = (32 * 28 * 28, 128 * 28 * 28)


@pytest.mark.parametrize("size,bounds", [((640, 480), RELEASED), ((333, 517), TINY), ((3, 2), TINY),
                                         ((150, 1), TINY), ((517, 333), RELEASED)])
def test_pixel_values_are_the_fast_processors_exactly(size, bounds):
    image = _image(*size)
    want = official_pixel_values(image, *bounds)
    got = ours(image, *bounds)
    assert got.shape == want.shape and torch.equal(got, want)


def test_the_pil_option_is_the_slow_processors_and_differs():
    """``resize="pil"`` (this project's earlier choice, now an option) is the slow processor's PIL bicubic; on
    640 x 480 under the released bounds the two differ by a uint8 level or two, as the official pin would
    show."""
    image = _image(640, 480, seed=3)
    slow, fast = official_pixel_values(image, *RELEASED, fast=False), official_pixel_values(image, *RELEASED)
    assert torch.equal(ours(image, *RELEASED, "pil"), slow)
    level = max(STD) ** -1 / 255
    gap = (slow - fast).abs().max().item()
    assert 0 < gap <= 3 * level


def test_an_unknown_resize_is_refused():
    from litelvlm.errors import LiteLVLMError
    from litelvlm.sa2va.protocol import llm_image

    with pytest.raises(LiteLVLMError, match="torchvision, pil"):
        llm_image(_image(30, 30), *TINY, "bilinear")
