"""The reversal on a family's merged grid (``litelvlm reversal --grid <family>``; this project's study
option).

Does the similarity reversal still hold where LiteLVLM selects on a family that maps an external CLIP's scores
onto its merged Qwen2.5-VL tokens (its abilities' ``clip_side="mapped"``; its card's ``merged_grid``
protocol)? The CLIP sees the image padded to a square, as there; each patch-text similarity row is mapped onto
the merged tokens of the family's protocol resize of that image by overlap area
(:func:`litelvlm.qwen_vision.grid.resample_matrix`), and a token is inside the referent when the mask covers
at least ``--threshold`` of its box (:func:`litelvlm.qwen_vision.grid.token_coverage`). No LVLM is loaded: the
grid follows from the image size alone.
"""

from __future__ import annotations

import functools

import numpy as np

from analysis.common.presentation.family_text import CLIP_GRID, merged_grid_families
from litelvlm.data.geometry import PatchCoverage, TransformParams, transform_params
from litelvlm.errors import LiteLVLMError
from litelvlm.qwen_vision.grid import TokenGrid, resample_matrix, source_edges, token_coverage
from litelvlm.registry.families import card


def grid_protocol(family: str):
    """The image protocol module of ``family``'s merged grid (its card's ``merged_grid``); refused without
    one."""
    target = card(family).merged_grid
    if target is None:
        raise LiteLVLMError(f"the {family} family has no merged grid; families with one: "
                            f"{', '.join(merged_grid_families()) or 'none'}")
    return target.get()


@functools.lru_cache(maxsize=64)
def _grid(height: int, width: int, family: str):
    return TokenGrid.from_resized(*grid_protocol(family).resized_size(height, width))


def merged_params(height: int, width: int, family: str) -> TransformParams:
    """Where ``family``'s merged grid lies on the image: the whole image, resized per axis (no pad, no
    crop)."""
    g = _grid(height, width, family)
    size = (g.h * g.patch, g.w * g.patch)
    return TransformParams(height=height, width=width, pad=(0, 0), frame=(height, width), resized=size,
                           offset=(0, 0), out=size)


def merged_weights(geometry, clip_grid: tuple[int, int], height: int, width: int, family: str) -> np.ndarray:
    """(N, P) float64: CLIP's P patches (over the padded square) onto the N merged tokens of ``family``'s grid
    of a (height, width) image, by overlap area; each row sums to 1."""
    params = transform_params(geometry, height, width, pad_to_square=True)
    src = source_edges(params, int(clip_grid[0]), int(clip_grid[1]))
    return resample_matrix(src, _grid(height, width, family), (height, width)).numpy()


def merged_coverage(mask: np.ndarray, family: str) -> PatchCoverage:
    """The referent ``mask`` (H, W) on ``family``'s merged grid of its image: coverage per token (row-major,
    the LLM's order); nothing is cut (the grid covers the whole image)."""
    mask = np.asarray(mask)
    h, w = mask.shape
    cov = token_coverage(mask.astype(bool), _grid(h, w, family)).numpy()
    return PatchCoverage(coverage=cov, crop_cut_share=0.0, mask_area_fraction=float(mask.astype(bool).mean()),
                         params=merged_params(h, w, family))


__all__ = ["CLIP_GRID", "grid_protocol", "merged_coverage", "merged_grid_families", "merged_params",
           "merged_weights"]
