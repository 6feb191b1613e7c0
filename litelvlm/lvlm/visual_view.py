"""Where a family's visual tokens lie on the image, as ``select`` and the studies draw them: their grid and
the image region they cover, read from what the family contract (:mod:`litelvlm.lvlm.family`) gives for any
family (the layout's positions, the family's fixed N, its CLIP's geometry). ``GroundingPipeline.visual_grid``
and ``visual_window`` call these; a family overrides them where its tokens lie otherwise.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..data.geometry import transform_params
from ..errors import LiteLVLMError


def visual_grid(pipe, prepared) -> tuple[int, int]:
    """(rows, cols) of ``prepared``'s N visual tokens in the family's sequence order (row-major). With 3-axis
    positions (M-RoPE) a visual token's height and width ids are its row and column (Qwen2.5-VL's
    ``get_rope_index``); with 1-D RoPE the N tokens are a square raster (GLaMM's 24 x 24 CLIP patches)."""
    n = pipe.num_visual(prepared)
    if pipe.abilities.position_axes == 3:
        layout = pipe.layout(prepared, n)
        pos = layout.position_ids[..., layout.image_start:layout.image_start + n].reshape(3, n).long().cpu()
        rows, cols = pos[1] - pos[1].min(), pos[2] - pos[2].min()
        shape = (int(rows.max()) + 1, int(cols.max()) + 1)
        if shape[0] * shape[1] == n and bool(((rows * shape[1] + cols) == torch.arange(n)).all()):
            return shape
        raise LiteLVLMError(f"the {pipe.family} family's {n} visual tokens are no row-major grid of their "
                            "positions")
    side = math.isqrt(n)
    if side * side != n:
        raise LiteLVLMError(
            f"the {pipe.family} family's {n} visual tokens (1-D positions) are no square grid")
    return side, side


def visual_window(pipe, image) -> np.ndarray:
    """The part of ``image`` the visual tokens cover, as an RGB array: CLIP's input window (its centre crop at
    its input size) for a family whose visual tokens are its CLIP's patches (fixed N, GLaMM's), else the whole
    image (a family that resizes the image without a crop, UniPixel's)."""
    # a family of fixed N only
    clip = pipe.clip if pipe.num_visual_tokens is not None else None
    if clip is not None and clip.num_patches == pipe.num_visual_tokens:
        tp = transform_params(clip.geometry, image.height, image.width)
        (y0, y1), (x0, x1) = tp.to_original(np.array([0, tp.out[0]]), np.array([0, tp.out[1]]))
        return np.asarray(image.convert("RGB").crop((x0, y0, x1, y1)).resize((tp.out[1], tp.out[0])))
    return np.asarray(image.convert("RGB"))
