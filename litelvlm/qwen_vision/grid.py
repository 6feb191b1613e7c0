"""Qwen2.5-VL's visual token grid: 14-px patches, 2x2-merged tokens, pixels, and the vision tower's window
order.

Details: docs/qwen.md (``litelvlm.qwen_vision.grid``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import LiteLVLMError

#: Qwen2.5-VL's patch side (px), spatial merge, and vision window (px): the released ``vision_config``.
PATCH, MERGE, WINDOW = 14, 2, 112


@dataclass(frozen=True)
class TokenGrid:
    """A ``(t, h, w)`` patch grid (``image_grid_thw`` / ``video_grid_thw`` row) with its patch size and
    merge."""

    t: int
    h: int
    w: int
    patch: int = PATCH
    merge: int = MERGE

    def __post_init__(self) -> None:
        if min(self.t, self.h, self.w) < 1 or self.h % self.merge or self.w % self.merge:
            raise LiteLVLMError(f"grid (t, h, w) = {(self.t, self.h, self.w)}: h and w must be positive "
                                f"multiples of the merge size {self.merge}")

    @classmethod
    def from_thw(cls, thw: Sequence[int] | torch.Tensor, patch: int = PATCH, merge: int = MERGE) -> TokenGrid:
        t, h, w = (int(v) for v in (thw.tolist() if isinstance(thw, torch.Tensor) else thw))
        return cls(t, h, w, patch, merge)

    @classmethod
    def from_resized(cls, height: int, width: int, t: int = 1, patch: int = PATCH,
                     merge: int = MERGE) -> TokenGrid:
        """The grid of a frame already resized to ``height x width`` (multiples of ``patch * merge``)."""
        return cls(t, height // patch, width // patch, patch, merge)

    @property
    def llm_h(self) -> int:
        return self.h // self.merge

    @property
    def llm_w(self) -> int:
        return self.w // self.merge

    @property
    def num_patches(self) -> int:
        return self.t * self.h * self.w

    @property
    def num_tokens(self) -> int:
        return self.t * self.llm_h * self.llm_w

    @property
    def token_px(self) -> int:
        return self.patch * self.merge


# -- patches and tokens ------------------------------------------------------------------------------
def patch_rc(grid: TokenGrid) -> torch.Tensor:
    """(N, 3) long: (t, row, col) on the patch grid of each patch in patchify order."""
    m = grid.merge
    t, br, bc, ir, ic = torch.meshgrid(torch.arange(grid.t), torch.arange(grid.llm_h),
                                       torch.arange(grid.llm_w),
                                       torch.arange(m), torch.arange(m), indexing="ij")
    return torch.stack([t.flatten(), (br * m + ir).flatten(), (bc * m + ic).flatten()], dim=1)


def patch_index(grid: TokenGrid, t: torch.Tensor | int, row: torch.Tensor | int, col: torch.Tensor | int):
    """Patchify-order index of the patch at (t, row, col) of the patch grid (the inverse of
    :func:`patch_rc`)."""
    m = grid.merge
    block = (t * grid.llm_h + row // m) * grid.llm_w + col // m
    return block * m * m + (row % m) * m + col % m


def token_of_patch(grid: TokenGrid) -> torch.Tensor:
    """(N,) long: the LLM-order token each patch (patchify order) is merged into."""
    return torch.arange(grid.num_patches) // (grid.merge * grid.merge)


def token_rc(grid: TokenGrid) -> torch.Tensor:
    """(M, 3) long: (t, row, col) on the merged grid of each token in LLM (= raster) order."""
    t, r, c = torch.meshgrid(torch.arange(grid.t), torch.arange(grid.llm_h), torch.arange(grid.llm_w),
                             indexing="ij")
    return torch.stack([t.flatten(), r.flatten(), c.flatten()], dim=1)


def token_patches(grid: TokenGrid) -> torch.Tensor:
    """(M, 4) long: the patchify-order indices of each token's patches (row-major inside its 2x2 block)."""
    k = grid.merge * grid.merge
    return torch.arange(grid.num_patches).view(grid.num_tokens, k)


def patch_boxes(grid: TokenGrid) -> torch.Tensor:
    """(N, 4) long: (x0, y0, x1, y1) pixels of each patch (patchify order) in the resized frame,
    end-exclusive."""
    rc = patch_rc(grid)
    y0, x0 = rc[:, 1] * grid.patch, rc[:, 2] * grid.patch
    return torch.stack([x0, y0, x0 + grid.patch, y0 + grid.patch], dim=1)


def token_boxes(grid: TokenGrid) -> torch.Tensor:
    """(M, 4) long: (x0, y0, x1, y1) pixels of each token (LLM order) in the resized frame, end-exclusive."""
    rc, s = token_rc(grid), grid.token_px
    y0, x0 = rc[:, 1] * s, rc[:, 2] * s
    return torch.stack([x0, y0, x0 + s, y0 + s], dim=1)


# -- the vision tower's windows ----------------------------------------------------------------------
def _window_keys(grid: TokenGrid, window_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(window id, order key) of each token in LLM order."""
    ws = window_size // grid.merge // grid.patch
    nwh, nww = -(-grid.llm_h // ws), -(-grid.llm_w // ws)
    rc = token_rc(grid)
    t, r, c = rc[:, 0], rc[:, 1], rc[:, 2]
    window = (t * nwh + r // ws) * nww + c // ws
    return window, window * ws * ws + (r % ws) * ws + c % ws


def window_index(grids: TokenGrid | Sequence[TokenGrid], window_size: int = WINDOW) -> torch.Tensor:
    """(M,) long: LLM-order index of each token in the vision tower's window order, the grids' tokens one
    after another (``get_vision_window_index``'s ``window_index``)."""
    grids = [grids] if isinstance(grids, TokenGrid) else list(grids)
    out, offset = [], 0
    for g in grids:
        out.append(torch.argsort(_window_keys(g, window_size)[1]) + offset)
        offset += g.num_tokens
    return torch.cat(out)


def window_seqlens(grids: TokenGrid | Sequence[TokenGrid], window_size: int = WINDOW) -> torch.Tensor:
    """(W + 1,) int32: cumulative patch counts of the non-empty windows (``cu_window_seqlens``)."""
    grids = [grids] if isinstance(grids, TokenGrid) else list(grids)
    counts = []
    for g in grids:
        window = _window_keys(g, window_size)[0]
        n = torch.bincount(window)
        counts.append(n[n > 0] * g.merge * g.merge)
    return torch.cat([torch.zeros(1, dtype=torch.long), torch.cat(counts).cumsum(0)]).to(torch.int32)


def window_inverse(index: torch.Tensor) -> torch.Tensor:
    """``argsort(window_index)``: the window-order position of each LLM-order token."""
    return torch.argsort(index)


def window_patch_index(index: torch.Tensor, merge: int = MERGE) -> torch.Tensor:
    """Patch-level window order: the patchify-order patch at each row of the tower's blocks."""
    k = merge * merge
    return (index[:, None] * k + torch.arange(k)).flatten()


# -- score maps from other grids ---------------------------------------------------------------------
def token_edges(grid: TokenGrid, image_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(ys, xs): the merged grid's row and column edges in the original (H, W) image's pixels (the resize
    maps resized pixel ``y`` to ``y * H / h``, separately per axis)."""
    H, W = image_size
    s = grid.token_px
    ys = torch.arange(grid.llm_h + 1, dtype=torch.float64) * s * H / (grid.h * grid.patch)
    xs = torch.arange(grid.llm_w + 1, dtype=torch.float64) * s * W / (grid.w * grid.patch)
    return ys, xs


def source_edges(params, rows: int, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ys, xs) edges, in original-image pixels, of a ``rows x cols`` map laid over the model input that
    ``params`` describes (:class:`litelvlm.data.geometry.TransformParams`: pad, resize, centre crop)."""
    ys, _ = params.to_original(np.linspace(0, params.out[0], rows + 1), np.zeros(rows + 1))
    _, xs = params.to_original(np.zeros(cols + 1), np.linspace(0, params.out[1], cols + 1))
    return torch.as_tensor(ys, dtype=torch.float64), torch.as_tensor(xs, dtype=torch.float64)


def _overlap(dst: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """(len(dst) - 1, len(src) - 1) overlap lengths of the intervals of two edge vectors."""
    lo = torch.maximum(dst[:-1, None], src[None, :-1])
    hi = torch.minimum(dst[1:, None], src[None, 1:])
    return (hi - lo).clamp(min=0)


def grid_coverage(src: tuple[torch.Tensor, torch.Tensor], grid: TokenGrid,
                  image_size: tuple[int, int]) -> torch.Tensor:
    """(llm_h, llm_w): the share of each token's box (in the original image) that the source map covers."""
    ys, xs = token_edges(grid, image_size)
    oy, ox = _overlap(ys, src[0]).sum(1), _overlap(xs, src[1]).sum(1)
    return (oy[:, None] * ox[None, :]) / (ys.diff()[:, None] * xs.diff()[None, :])


def resample_to_grid(scores: torch.Tensor, src: tuple[torch.Tensor, torch.Tensor], grid: TokenGrid,
                     image_size: tuple[int, int], mode: str = "area",
                     fill: float = float("nan")) -> torch.Tensor:
    """A (..., H', W') score map whose cells have edges ``src`` = (ys, xs) in original-image pixels (e.g.
    :func:`source_edges` of CLIP's crop) on the merged grid: (..., llm_h, llm_w), float64.

    Aspect ratio: Qwen resizes the whole image with a slightly different scale per axis (to multiples of
    28); CLIP's resize + centre crop keeps a square of the short side. Both are mapped back to the original
    pixels, so nothing is stretched: ``mode="area"`` gives each token the mean of the score cells weighted by
    their overlap with its box; a token only partly inside the map averages over the covered part
    (:func:`grid_coverage` says how much), a token wholly outside (the long side's ends that the crop cut
    off) gets ``fill``. ``mode="nearest"`` takes the cell under the token's centre (``fill`` outside)."""
    ys, xs = token_edges(grid, image_size)
    s = scores.to(torch.float64)
    if mode == "area":
        oy, ox = _overlap(ys, src[0]), _overlap(xs, src[1])
        num = torch.einsum("ih,...hw,jw->...ij", oy, s, ox)
        den = oy.sum(1)[:, None] * ox.sum(1)[None, :]
        return torch.where(den > 0, num / den.clamp(min=1e-300), torch.full_like(num, fill))
    if mode == "nearest":
        cy, cx = (ys[:-1] + ys[1:]) / 2, (xs[:-1] + xs[1:]) / 2
        iy = torch.searchsorted(src[0].contiguous(), cy, right=True) - 1
        ix = torch.searchsorted(src[1].contiguous(), cx, right=True) - 1
        oky = (iy >= 0) & (iy < s.shape[-2])
        okx = (ix >= 0) & (ix < s.shape[-1])
        out = s[..., iy.clamp(0, s.shape[-2] - 1)[:, None], ix.clamp(0, s.shape[-1] - 1)[None, :]]
        return torch.where(oky[:, None] & okx[None, :], out, torch.full_like(out, fill))
    raise LiteLVLMError(f"mode must be 'area' or 'nearest', got {mode!r}")


def resample_matrix(src: tuple[torch.Tensor, torch.Tensor], grid: TokenGrid,
                    image_size: tuple[int, int]) -> torch.Tensor:
    """(M, H' * W') float64: :func:`resample_to_grid`'s area rule as a matrix, so that ``matrix @
    scores.flatten()`` is the resampled map in LLM order (one frame); each row sums to 1 where the source map
    covers the token, and is all zeros where it does not."""
    if grid.t != 1:
        raise LiteLVLMError(f"resample_matrix maps one frame; the grid has t = {grid.t}")
    ys, xs = token_edges(grid, image_size)
    oy, ox = _overlap(ys, src[0]), _overlap(xs, src[1])
    oy = oy / oy.sum(1, keepdim=True).clamp(min=1e-300)
    ox = ox / ox.sum(1, keepdim=True).clamp(min=1e-300)
    return torch.einsum("ih,jw->ijhw", oy, ox).reshape(grid.llm_h * grid.llm_w, -1)


def token_coverage(mask, grid: TokenGrid) -> torch.Tensor:
    """(llm_h, llm_w) float64: the share of each merged token's box (in the original image) that the (H, W)
    ``mask`` covers, pixels as unit squares (the rule of :func:`litelvlm.data.geometry.patch_coverage` on this
    grid)."""
    m = torch.as_tensor(mask, dtype=torch.float64)
    H, W = m.shape
    ys, xs = token_edges(grid, (H, W))
    oy = _overlap(ys, torch.arange(H + 1, dtype=torch.float64))
    ox = _overlap(xs, torch.arange(W + 1, dtype=torch.float64))
    return (oy @ m @ ox.T / (ys.diff()[:, None] * xs.diff()[None, :])).clamp(0.0, 1.0)


__all__ = ["MERGE", "PATCH", "WINDOW", "TokenGrid", "grid_coverage", "patch_boxes", "patch_index", "patch_rc",
           "resample_matrix", "resample_to_grid", "source_edges", "token_boxes", "token_coverage",
           "token_edges", "token_of_patch", "token_patches",
           "token_rc", "window_index", "window_inverse", "window_patch_index", "window_seqlens"]
