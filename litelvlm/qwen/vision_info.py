"""qwen-vl-utils' image handling (``process_vision_info`` / ``fetch_image``), which Qwen2.5-VL-based models
call before the processor: the RGB conversion and the resize target.

Source: QwenLM/Qwen2.5-VL ``qwen-vl-utils/src/qwen_vl_utils/vision_process.py`` (``smart_resize``,
``to_rgb``), as the grounding models built on Qwen2.5-VL vendor or import it (UniPixel's ``dataset/utils.py``
L59-87; Sa2VA's ``predict_forward`` through ``process_vision_info``). The bounds are each caller's.
"""

from __future__ import annotations

import math

from PIL import Image
from torchvision.transforms.v2 import functional as F

from ..errors import LiteLVLMError
from ..image_resize import IMAGE_RESIZES
from ..switches import check_one_of

#: ``MAX_RATIO``: the largest aspect ratio ``smart_resize`` accepts
MAX_RATIO = 200


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """qwen-vl-utils' resize target: multiples of ``factor`` nearest the size (at least ``factor``), scaled up
    to ``min_pixels`` first, then down to ``max_pixels``. It differs from transformers' ``smart_resize``
    (which clamps to ``factor`` only when scaling down)."""
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise LiteLVLMError(f"image of {height} x {width} px: aspect ratio above {MAX_RATIO}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    return h_bar, w_bar


def processor_resize(image: Image.Image, width: int, height: int, how: str = "torchvision") -> Image.Image:
    """The Qwen2-VL image processor's bicubic resize of an RGB image to ``width`` x ``height``.
    ``"torchvision"``: the fast processor's (transformers 4.57 ``image_processing_utils_fast.py`` L582
    ``F.pil_to_tensor``, L363 ``F.resize(..., antialias=True)`` on the uint8 tensor,
    torchvision.transforms.v2); ``"pil"``: the slow one's (PIL's bicubic), which this project used before
    (labelled an option)."""
    if how == "pil":
        return image if image.size == (width, height) else image.resize((width, height),
                                                                        Image.Resampling.BICUBIC)
    check_one_of("image resize", how, IMAGE_RESIZES)

    out = F.resize(F.pil_to_tensor(image), [height, width], interpolation=F.InterpolationMode.BICUBIC,
                   antialias=True)
    return Image.fromarray(out.permute(1, 2, 0).numpy(), mode="RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB as ``fetch_image`` makes it: RGBA composited over white, anything else ``convert("RGB")``."""
    if image.mode == "RGBA":
        out = Image.new("RGB", image.size, (255, 255, 255))
        out.paste(image, mask=image.split()[3])
        return out
    return image.convert("RGB")


__all__ = ["MAX_RATIO", "processor_resize", "smart_resize", "to_rgb"]
