"""transformers' ``Qwen2_5_VLConfig`` of a preset (this module imports transformers;
:mod:`litelvlm.qwen.config` holds the presets and imports nothing heavy)."""

from __future__ import annotations

from transformers import Qwen2_5_VLConfig

from .config import QwenPreset, released_config


def qwen_config(preset: str | QwenPreset):
    """transformers ``Qwen2_5_VLConfig`` of a preset, read from :func:`released_config` (the same dict a
    written checkpoint's ``config.json`` holds)."""
    return Qwen2_5_VLConfig.from_dict(released_config(preset))


__all__ = ["qwen_config"]
