"""Qwen2.5-VL: presets of the released sizes, random-weight checkpoints in the released layout, loading.

Qwen2.5-VL has no mask head: the model family built on it is UniPixel (:mod:`litelvlm.unipixel`); see
docs/qwen.md. Importing this package is light; the checkpoint functions import torch and transformers when
called.
"""

from __future__ import annotations

from ..lazy import lazy_exports
from .config import PRESETS, SPECIAL_TOKENS, QwenPreset, get_preset, released_config

#: name -> the submodule that defines it (imported on first use: it imports torch and transformers)
_WHERE = {"load_qwen": ".checkpoint", "qwen_config": ".hf_config"}
__getattr__ = lazy_exports(__name__, _WHERE)


__all__ = ["PRESETS", "SPECIAL_TOKENS", "QwenPreset", "get_preset", "load_qwen", "qwen_config",
           "released_config"]
