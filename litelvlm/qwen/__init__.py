"""Qwen2.5-VL: presets of the released sizes, random-weight checkpoints in the released layout, loading.

Qwen2.5-VL has no mask head: the model family built on it is UniPixel (:mod:`litelvlm.unipixel`); see
docs/qwen.md. Importing this package is light; the checkpoint functions import torch and transformers when
called.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import PRESETS, SPECIAL_TOKENS, QwenPreset, get_preset, released_config

#: name -> the submodule that defines it (imported on first use: it imports torch and transformers)
_WHERE = {"load_qwen": ".checkpoint", "qwen_config": ".hf_config"}


def __getattr__(name: str) -> Any:
    """``load_qwen`` ((model, processor) of a Qwen2.5-VL model string) and ``qwen_config`` (transformers'
    config of a preset), their modules imported on first use."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name], __name__), name)


__all__ = ["PRESETS", "SPECIAL_TOKENS", "QwenPreset", "get_preset", "load_qwen", "qwen_config",
           "released_config"]
