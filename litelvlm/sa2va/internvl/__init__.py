"""Sa2VA on InternVL3 (``ByteDance/Sa2VA-InternVL3-2B``/-8B/-14B): InternViT + ``mlp1`` + a Qwen2.5 LLM with
SAM 2 prompted by the ``[SEG]`` hidden state, as presets of the ``sa2va`` family.

:mod:`.config` (presets, constants, ``config.json``), :mod:`.tiles` (the image protocol), :mod:`.vision` (the
checkpoint's InternViT names on transformers' ``InternVLVisionModel``), :mod:`.checkpoint` (random folders in
the released layout and their loader), :mod:`.pipeline` (``Sa2VAInternVLPipeline``). Importing this package is
light.
"""

from __future__ import annotations

from .config import BACKBONE, PRESETS, InternVLPreset, get_preset, is_internvl

__all__ = ["BACKBONE", "PRESETS", "InternVLPreset", "get_preset", "is_internvl"]
