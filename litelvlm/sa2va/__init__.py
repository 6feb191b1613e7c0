"""Sa2VA-Qwen2.5-VL (Qwen2.5-VL + SAM 2 prompted by the ``[SEG]`` hidden state): presets, checkpoints,
protocol, pipeline; Sa2VA-Qwen3-VL as presets of the same family (:mod:`litelvlm.sa2va.qwen3_pipeline`).

The model family ``sa2va`` (:mod:`litelvlm.sa2va.pipeline`): see docs/sa2va.md. Pruning Sa2VA is this
project's own adaptation (no official code prunes it). Importing this package is light; the modules with
weights import torch and transformers when used.
"""

from __future__ import annotations

from .config import DEFAULT_MODEL, PRESETS, RANDOM_SA2VAS, Sa2VAPreset, get_preset

__all__ = ["DEFAULT_MODEL", "PRESETS", "RANDOM_SA2VAS", "Sa2VAPreset", "get_preset"]
