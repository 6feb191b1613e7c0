"""UniPixel (Qwen2.5-VL + SAM 2.1 prompted by the LLM's hidden states): presets, the mask head, checkpoints.

The model family ``unipixel`` (:mod:`litelvlm.unipixel.pipeline`): see docs/unipixel.md. Importing this
package is light; the modules with weights import torch and transformers when used.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import PRESETS, SAM2_SIZES, Sam2Size, UniPixelPreset, get_preset


def __getattr__(name: str) -> Any:
    """``load_unipixel``: the modules of a UniPixel model string
    (:func:`litelvlm.unipixel.checkpoint.load_unipixel`), its module imported on first use."""
    if name != "load_unipixel":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module(".checkpoint", __name__).load_unipixel


__all__ = ["PRESETS", "SAM2_SIZES", "Sam2Size", "UniPixelPreset", "get_preset", "load_unipixel"]
