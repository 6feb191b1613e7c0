"""SAM's longest-side resize rule (segment_anything's ``ResizeLongestSide.get_preprocess_shape``,
``utils/transforms.py``), which GLaMM and VideoGLaMM each vendor and apply before SAM's (or SAM 2's) image
encoder. This module is light (it imports nothing)."""

from __future__ import annotations


def preprocess_shape(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w) with the longest side scaled to ``long_side``, each side rounded half up."""
    scale = long_side * 1.0 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


__all__ = ["preprocess_shape"]
