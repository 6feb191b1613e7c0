"""Qwen2.5-VL: presets of the released sizes, random-weight checkpoints in the released layout, loading.

Qwen2.5-VL has no mask head: the model family built on it is UniPixel (:mod:`litelvlm.unipixel`); see docs/qwen.md.
Importing this package is light; the checkpoint functions import torch and transformers when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .checkpoint import load_qwen as _load
from .config import PRESETS, SPECIAL_TOKENS, QwenPreset, get_preset, qwen_config, released_config

if TYPE_CHECKING:
    import torch


def load_qwen(model: str, device: str | torch.device = "cpu", dtype: torch.dtype | None = None):
    """(model, processor) of a Qwen2.5-VL model string (see :func:`litelvlm.qwen.checkpoint.load_qwen`)."""
    return _load(model, device=device, dtype=dtype)


__all__ = ["PRESETS", "SPECIAL_TOKENS", "QwenPreset", "get_preset", "load_qwen", "qwen_config", "released_config"]
