"""The CPU part of preparing an image on the families with a SAM 2 head (``GroundingPipeline.pixels``): what
the family's vision tower reads, made by its processor, and SAM 2's pixels, both on the CPU, for a loader
thread to make ahead of the model; ``prepare_image`` of them equals ``prepare_image`` of the image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image


@dataclass(frozen=True)
class QwenPixels:
    """One image's ``image``, its vision tower's input ``tower`` (the family's processor output, CPU tensors)
    and SAM 2's (1, 3, S, S) pixels ``sam`` on the CPU, before their move to the model's device."""

    image: Image.Image
    tower: Any
    sam: torch.Tensor


def as_pixels(pipe, image: Image.Image | QwenPixels) -> QwenPixels:
    """``image`` as :class:`QwenPixels`: itself, or ``pipe.pixels`` of it."""
    return image if isinstance(image, QwenPixels) else pipe.pixels(image)


__all__ = ["QwenPixels", "as_pixels"]
