"""Downsampling (``downsample``): the grid of visual tokens average-pooled to the budget, at the LLM input.

This project's reading of VTC-Bench's baseline (Liao et al., ACL 2026, arXiv 2510.07143), not its code
(Chenfei-Liao/VTC-Bench, ``qwen2_vl.py``, downsamples the image's pixels; this project pools the tokens).

Details, the official statements with their lines and the deviations: docs/methods/downsample.md
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import LiteLVLMError
from ..llm.context import LLMContext
from ..method import Method, no_layers
from ..pruning.selection import Selection, check_budget


def pooled_shape(budget: int, rows: int, cols: int) -> tuple[int, int, int]:
    """(h, w, r) of a (rows, cols) grid pooled to ``budget`` tokens: h row bands of w columns, r of them with
    one more (``h w + r = budget``, r < h)."""
    check_budget(budget, rows * cols)
    h = math.isqrt(budget * rows // cols)  # floor(sqrt(K H / W)), exactly
    h = min(max(h, -(-budget // cols), 1), rows, budget)
    w, r = divmod(budget, h)
    return h, w, r


def extra_bands(h: int, r: int) -> torch.Tensor:
    """(h,) bool: the r row bands (of h) that get one more column, spread evenly."""
    i = torch.arange(h)
    return (i + 1) * r // h > i * r // h


def windows(size: int, out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(starts, ends) of ``adaptive_avg_pool``'s ``out`` windows over ``size`` cells (torch's rule)."""
    i = torch.arange(out)
    return i * size // out, ((i + 1) * size + out - 1) // out


def centre(size: int, out: int) -> torch.Tensor:
    """(out,) the cell at each adaptive window's centre (the lower middle of an even window)."""
    starts, ends = windows(size, out)
    return (starts + ends - 1) // 2


def pool_grid(tokens: torch.Tensor, rows: int, cols: int, budget: int) -> tuple[torch.Tensor, torch.Tensor]:
    """((K, C) pooled tokens, (K,) the raster index of each one's centre cell) of ``tokens`` (N, C) laid out
    as a (rows, cols) raster grid (docs/methods/downsample.md)."""
    if tokens.shape[0] != rows * cols:
        raise LiteLVLMError(f"{tokens.shape[0]} tokens are no {rows} x {cols} grid")
    h, w, r = pooled_shape(budget, rows, cols)
    grid = tokens.float().t().reshape(1, -1, rows, cols)
    narrow = F.adaptive_avg_pool2d(grid, (h, w))[0]  # (C, h, w)
    band_rows = centre(rows, h).to(tokens.device)
    if r == 0:
        pooled = narrow.flatten(1).t()
        cells = band_rows[:, None] * cols + centre(cols, w).to(tokens.device)[None, :]
        return pooled.to(tokens.dtype), cells.flatten()
    wide = F.adaptive_avg_pool2d(grid, (h, w + 1))[0]  # (C, h, w + 1)
    extra = extra_bands(h, r).tolist()
    cols_narrow, cols_wide = centre(cols, w).to(tokens.device), centre(cols, w + 1).to(tokens.device)
    pooled = torch.cat([(wide if extra[i] else narrow)[:, i].t() for i in range(h)])
    cells = torch.cat([band_rows[i] * cols + (cols_wide if extra[i] else cols_narrow) for i in range(h)])
    return pooled.to(tokens.dtype), cells


def squarest(num_tokens: int) -> tuple[int, int]:
    """(rows, cols) of the most square grid of ``num_tokens`` cells, rows <= cols."""
    rows = max(d for d in range(1, math.isqrt(num_tokens) + 1) if num_tokens % d == 0)
    return rows, num_tokens // rows


def grid_of(ctx: LLMContext) -> tuple[int, int]:
    """(rows, cols) of the visual tokens (the family's ``visual_grid``); a family whose tokens are no single
    2-D grid is refused with its reason. A stand-in context without a family's grid (the FLOPs count's
    synthetic inputs, :func:`litelvlm.cost.meta.llm_input_selection_flops`) pools :func:`squarest`."""
    visual_grid = None if ctx.pipeline is None else ctx.pipeline.visual_grid
    if visual_grid is None:
        return squarest(int(ctx.num_visual))
    try:
        return visual_grid(ctx.prepared)
    except LiteLVLMError as e:
        raise LiteLVLMError(f"downsample pools one 2-D grid of visual tokens, which this input has not: "
                            f"{e}") from e


def downsample_select(ctx: LLMContext, budget: int) -> Selection:
    """The visual tokens' grid average-pooled to K tokens (docs/methods/downsample.md): ``features`` the
    pooled tokens, ``indices`` their centre cells; ``parts``: ``grid`` (H, W), ``pooled`` (h, w, r)."""
    rows, cols = grid_of(ctx)
    pooled, cells = pool_grid(ctx.visual_embeds, rows, cols, budget)
    parts = {"grid": torch.tensor([rows, cols]), "pooled": torch.tensor(pooled_shape(budget, rows, cols))}
    return Selection(indices=cells, features=pooled, parts=parts)


DOWNSAMPLE = Method("llm-input", downsample_select, positions="keep", original_positions=False,
                    host_sync=True, attention_weights=no_layers,
                    name="downsample",
                    description=("downsampling (this project's reading of VTC-Bench, which resizes the "
                                 "image): the grid of visual tokens average-pooled to K at the LLM "
                                 "input, each pooled token at its window's centre position"))
