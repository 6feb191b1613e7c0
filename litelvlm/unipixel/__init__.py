"""UniPixel (Qwen2.5-VL + SAM 2.1 prompted by the LLM's hidden states): presets, the mask head, checkpoints.

The model family ``unipixel`` (:mod:`litelvlm.unipixel.pipeline`): see docs/unipixel.md. Importing this
package is light; the modules with weights import torch and transformers when used.
"""

from __future__ import annotations

from ..lazy import lazy_exports
from .config import PRESETS, SAM2_SIZES, Sam2Size, UniPixelPreset, get_preset

#: name -> the submodule that defines it (imported on first use: it imports torch and transformers)
_WHERE = {"load_unipixel": ".checkpoint"}
__getattr__ = lazy_exports(__name__, _WHERE)


__all__ = ["PRESETS", "SAM2_SIZES", "Sam2Size", "UniPixelPreset", "get_preset", "load_unipixel"]
