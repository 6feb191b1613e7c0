"""UniPixel (Qwen2.5-VL + SAM 2.1 prompted by the LLM's hidden states): presets, the mask head, checkpoints.

The model family ``unipixel`` (:mod:`litelvlm.unipixel.pipeline`): see docs/unipixel.md. Importing this package is
light; the modules with weights import torch and transformers when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .checkpoint import load_unipixel as _load
from .config import PRESETS, SAM2_SIZES, Sam2Size, UniPixelPreset, get_preset

if TYPE_CHECKING:
    import torch

    from .checkpoint import UniPixelModules


def load_unipixel(model: str, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                  processor: bool = True) -> UniPixelModules:
    """The modules of a UniPixel model string (see :func:`litelvlm.unipixel.checkpoint.load_unipixel`)."""
    return _load(model, device=device, dtype=dtype, processor=processor)


__all__ = ["PRESETS", "SAM2_SIZES", "Sam2Size", "UniPixelPreset", "get_preset", "load_unipixel"]
