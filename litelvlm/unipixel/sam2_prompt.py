"""UniPixel's image path is SAM 2 prompted by the seg head's hidden-state tokens: :mod:`litelvlm.sam2.prompt`, which
transcribes UniPixel's modified SAM 2.1 as it is."""

from __future__ import annotations

from ..sam2.prompt import Sam2Masks, Sam2Prompt

__all__ = ["Sam2Masks", "Sam2Prompt"]
