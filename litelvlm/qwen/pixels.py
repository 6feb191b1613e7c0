"""The CPU part of preparing an image on the families with a SAM 2 head (``GroundingPipeline.pixels``):
what the family's vision tower reads, made by its processor, SAM 2's pixels and, where the paired CLIP is
loaded, its pixels of the image padded to a square, all on the CPU, for a loader thread to make ahead of the
model; ``prepare_image`` of them equals ``prepare_image`` of the image, and the CLIP-side selection's trace
of them equals its trace of the image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image


@dataclass(frozen=True)
class QwenPixels:
    """One image's ``image``, its vision tower's input ``tower`` (the family's processor output, CPU
    tensors), SAM 2's (1, 3, S, S) pixels ``sam`` and the paired CLIP's (1, 3, H, W) pixels ``clip`` of the
    image padded to a square (None where the CLIP was not loaded yet), on the CPU, before their move to the
    model's device."""

    image: Image.Image
    tower: Any
    sam: torch.Tensor
    clip: torch.Tensor | None = None

    def clip_cache(self) -> dict:
        """The prepared input's ``clip_cache`` to start with: the CLIP pixels, where made."""
        return {} if self.clip is None else {PIXELS: self.clip}


#: the key of the paired CLIP's pixels in a prepared input's ``clip_cache``
PIXELS = "pixels"


def paired_clip_pixels(pipe, image: Image.Image) -> torch.Tensor | None:
    """The paired CLIP's CPU pixels of ``image`` padded to a square (its selection's input), where the CLIP is
    loaded (``pipe.loaded_clip()``; None otherwise: the selection makes them itself)."""
    clip = pipe.loaded_clip()
    if clip is None:
        return None
    return clip.preprocess([image.convert("RGB")], pad_to_square=True, on_device=False)


def clip_vision(pipe, prepared):
    """The paired CLIP's vision trace of ``prepared.image`` padded to a square: from the loader's pixels where
    they were made (moved and cast as ``preprocess`` moves them), else preprocessed here."""
    clip, pixels = pipe.clip, prepared.clip_cache.pop(PIXELS, None)
    if pixels is None:
        return clip.trace_image(clip.preprocess([prepared.image.convert("RGB")], pad_to_square=True))
    return clip.trace_image(pixels.to(clip.device, clip.dtype))


def as_pixels(pipe, image: Image.Image | QwenPixels) -> QwenPixels:
    """``image`` as :class:`QwenPixels`: itself, or ``pipe.pixels`` of it."""
    return image if isinstance(image, QwenPixels) else pipe.pixels(image)


__all__ = ["PIXELS", "QwenPixels", "as_pixels", "clip_vision", "paired_clip_pixels"]
