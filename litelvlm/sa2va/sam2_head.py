"""Sa2VA's mask head: ``text_hidden_fcs`` and SAM 2 prompted by the ``[SEG]`` hidden state, on transformers'
``Sam2Model`` (bytedance/Sa2VA @ 9832e1a, ``projects/sa2va/hf/models_qwen2_5_vl/``).

Details: docs/sa2va.md (`litelvlm.sa2va.sam2_head`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from ..sam2.prompt import Sam2Prompt
from .config import SAM_MEAN, SAM_STD


class TextHiddenFcs(nn.Sequential):
    """``text_hidden_fcs``: Linear(h, h), ReLU, Linear(h, out), Dropout(0) (``modeling_sa2va_qwen.py``
    L57-60)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__(nn.Linear(in_dim, in_dim), nn.ReLU(inplace=True), nn.Linear(in_dim, out_dim),
                         nn.Dropout(0.0))


def direct_resize(image, size: int) -> np.ndarray:
    """``DirectResize(size).apply_image``: an RGB image (PIL or (H, W, 3) uint8) stretched to size x size,
    bicubic."""
    arr = np.asarray(image.convert("RGB")) if isinstance(image, Image.Image) else np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {arr.dtype} {arr.shape}")
    return np.array(Image.fromarray(arr, mode="RGB").resize((size, size), Image.Resampling.BICUBIC))


def sam_pixels(image, size: int, video: bool = False) -> torch.Tensor:
    """(3, size, size) bfloat16 SAM 2 pixels of one image (normalised in bfloat16) or of a video frame
    (normalised in float32 against bfloat16 constants), as docs/sa2va.md says."""
    x = torch.from_numpy(direct_resize(image, size)).permute(2, 0, 1).contiguous()
    if not video:
        x = x.to(torch.bfloat16)
    x = x / 255.0
    mean = torch.tensor(SAM_MEAN, dtype=torch.bfloat16)[:, None, None]
    std = torch.tensor(SAM_STD, dtype=torch.bfloat16)[:, None, None]
    x -= mean
    x /= std
    return x.to(torch.bfloat16)


class Sa2VASam2(Sam2Prompt):
    """transformers' ``Sam2Model`` with Sa2VA's ``[SEG]`` prompt (docs/sa2va.md); ``image_size`` 1024 as
    released.
    :meth:`~litelvlm.sam2.prompt.Sam2Prompt.decode` is the base's: three candidates, the masks cast to
    float32, the best by predicted IoU, no object-score gate."""

    mask_dtype = torch.float32
    gate_object_score = False

    def preprocess(self, image, video: bool = False) -> torch.Tensor:
        """(1, 3, S, S) pixels of ``image`` (:func:`sam_pixels`) in the model's dtype and device."""
        return self.on_device(self.pixels(image, video))

    def pixels(self, image, video: bool = False) -> torch.Tensor:
        """(1, 3, S, S) pixels of ``image`` (:func:`sam_pixels`) on the CPU, before the move."""
        return sam_pixels(image, self.image_size, video=video)[None]

    def upscale(self, low_res: torch.Tensor, original_size: tuple[int, int]) -> torch.Tensor:
        """(S, H, W) float32 logits from (S, 1, h, w): bilinear to ``image_size`` squared, then to (H, W)."""
        H, W = (int(v) for v in original_size)
        x = low_res.float()
        if tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear",
                              align_corners=False)
        if tuple(x.shape[-2:]) != (H, W):
            x = F.interpolate(x, size=(H, W), mode="bilinear", align_corners=False)
        return x[:, 0]


__all__ = ["Sa2VASam2", "TextHiddenFcs", "direct_resize", "sam_pixels"]
