"""The reversal on UniPixel's merged grid (``litelvlm reversal --grid unipixel``; this project's study option).

Does the similarity reversal still hold where LiteLVLM selects on UniPixel (:mod:`litelvlm.unipixel.pipeline`)? The
CLIP sees the image padded to a square, as there; each patch-text similarity row is mapped onto the merged tokens
of UniPixel's protocol resize of that image by overlap area (:func:`litelvlm.qwen.grid.resample_matrix`), and a
token is inside the referent when the mask covers at least ``--threshold`` of its box
(:func:`litelvlm.qwen.grid.token_coverage`). No LVLM is loaded: the grid follows from the image size alone.
"""

from __future__ import annotations

import functools

import numpy as np

from litelvlm.data.geometry import PatchCoverage, TransformParams, transform_params


@functools.lru_cache(maxsize=64)
def _grid(height: int, width: int):
    from litelvlm.qwen.grid import TokenGrid
    from litelvlm.unipixel.protocol import resized_size

    return TokenGrid.from_resized(*resized_size(height, width))


def merged_params(height: int, width: int) -> TransformParams:
    """Where the merged grid lies on the image: the whole image, resized per axis (no pad, no crop)."""
    g = _grid(height, width)
    size = (g.h * g.patch, g.w * g.patch)
    return TransformParams(height=height, width=width, pad=(0, 0), frame=(height, width), resized=size,
                           offset=(0, 0), out=size)


def merged_weights(geometry, clip_grid: tuple[int, int], height: int, width: int) -> np.ndarray:
    """(N, P) float64: CLIP's P patches (over the padded square) onto the N merged tokens of a (height, width)
    image, by overlap area; each row sums to 1."""
    from litelvlm.qwen.grid import resample_matrix, source_edges

    params = transform_params(geometry, height, width, pad_to_square=True)
    src = source_edges(params, int(clip_grid[0]), int(clip_grid[1]))
    return resample_matrix(src, _grid(height, width), (height, width)).numpy()


def merged_coverage(mask: np.ndarray) -> PatchCoverage:
    """The referent ``mask`` (H, W) on the merged grid of its image: coverage per token (row-major, the LLM's
    order); nothing is cut (the grid covers the whole image)."""
    from litelvlm.qwen.grid import token_coverage

    mask = np.asarray(mask)
    h, w = mask.shape
    cov = token_coverage(mask.astype(bool), _grid(h, w)).numpy()
    return PatchCoverage(coverage=cov, crop_cut_share=0.0, mask_area_fraction=float(mask.astype(bool).mean()),
                         params=merged_params(h, w))


__all__ = ["merged_coverage", "merged_params", "merged_weights"]
