"""Referent masks on the model's patch grid, through EXACTLY the geometric transform applied to the image.

The transform is described by a backend's :class:`~litelvlm.clip.traces.Geometry`:

1. optional LLaVA "pad" (``pad_to_square``): the image is pasted centred on a square of
   side ``max(H, W)`` at offset ``((side - W) // 2, (side - H) // 2)``;
2. resize: ``shortest`` sets the short side to ``resize`` and the long side to
   ``int(resize * long / short)`` (transformers and torchvision agree); ``squash`` resizes
   to the crop size; ``longest`` (open_clip) scales the long side to the crop size with
   Python ``round`` on each side;
3. centre crop to ``crop`` (padding first where the image is smaller): the offset is
   ``floor((size - crop) / 2)`` in transformers and ``round(...)`` (half to even) in
   torchvision's ``CenterCrop``.

Each output pixel ``y`` (continuous, ``[0, crop)``) maps back to the original image at
``(y + top) * frame / resized - pad`` -- the same pixel-area mapping the resamplers use.
A patch's coverage ``c_i`` is the exact area fraction of its back-mapped rectangle that the
mask covers (pixels as unit squares; padding counts as outside the mask).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TransformParams:
    """Where the model's input window lies in the original image: pad, resize and crop offsets."""

    height: int
    width: int
    pad: tuple[int, int]          # (top, left) offset of the image in the padded square (0, 0 without pad)
    frame: tuple[int, int]        # (H, W) after padding (the original size without pad)
    resized: tuple[int, int]      # (H, W) after the resize
    offset: tuple[int, int]       # (top, left) of the output window in resized pixels (negative = padding)
    out: tuple[int, int]          # (H, W) of the model input

    def to_original(self, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map output-pixel coordinates (continuous) to original-image coordinates."""
        sy = self.frame[0] / self.resized[0]
        sx = self.frame[1] / self.resized[1]
        return ((np.asarray(ys, float) + self.offset[0]) * sy - self.pad[0],
                (np.asarray(xs, float) + self.offset[1]) * sx - self.pad[1])


def _crop_offset(size: int, crop: int, rounding: str) -> int:
    if crop > size:  # both libraries pad (crop - size) // 2 before, then the crop offset is 0
        return -((crop - size) // 2)
    half = (size - crop) / 2.0
    if rounding == "floor":
        return int(half)
    if rounding == "round":
        return int(round(half))  # Python's round: half to even, as torchvision's CenterCrop
    raise ValueError(f"crop_rounding must be 'floor' or 'round', got {rounding!r}")


def transform_params(geometry, height: int, width: int, pad_to_square: bool | None = None) -> TransformParams:
    """The pad / resize / crop parameters that ``geometry`` applies to an image of (height, width)."""
    pad_sq = geometry.pad_to_square if pad_to_square is None else pad_to_square
    crop_h, crop_w = int(geometry.crop[0]), int(geometry.crop[1])
    if pad_sq and height != width:
        side = max(height, width)
        pad, frame = ((side - height) // 2, (side - width) // 2), (side, side)
    else:
        pad, frame = (0, 0), (height, width)
    fh, fw = frame
    if geometry.mode == "squash":
        resized = (crop_h, crop_w)
    elif geometry.mode == "longest":
        ratio = max(fh / crop_h, fw / crop_w)
        resized = (round(fh / ratio), round(fw / ratio))
    elif geometry.mode == "shortest":
        if crop_h == crop_w:
            size = int(geometry.resize)
            if fw <= fh:
                resized = (int(size * fh / fw), size)
            else:
                resized = (size, int(size * fw / fh))
        else:  # open_clip's ResizeKeepRatio(longest=0) for non-square inputs
            ratio = min(fh / crop_h, fw / crop_w)
            resized = (round(fh / ratio), round(fw / ratio))
    else:
        raise ValueError(f"unknown geometry mode {geometry.mode!r}")
    offset = (_crop_offset(resized[0], crop_h, geometry.crop_rounding),
              _crop_offset(resized[1], crop_w, geometry.crop_rounding))
    return TransformParams(height=height, width=width, pad=pad, frame=frame, resized=resized,
                           offset=offset, out=(crop_h, crop_w))


def _overlap(n: int, edges: np.ndarray) -> np.ndarray:
    """(G, n) overlap length of pixel ``[i, i+1)`` with each interval ``[edges[g], edges[g+1])``."""
    i = np.arange(n, dtype=float)
    lo = np.maximum(i[None], edges[:-1, None])
    hi = np.minimum(i[None] + 1, edges[1:, None])
    return np.clip(hi - lo, 0.0, None)


@dataclass(frozen=True)
class PatchCoverage:
    """A referent mask on a (rows, cols) grid over the model input, with the crop's loss."""

    coverage: np.ndarray          # (rows, cols) float in [0, 1]
    crop_cut_share: float         # share of the mask's area outside the model's input window
    mask_area_fraction: float     # mask area / image area (before any transform)
    params: TransformParams

    def inside(self, threshold: float = 0.5) -> np.ndarray:
        """Flattened (rows*cols,) bool: patches with ``c_i >= threshold``."""
        return self.coverage.reshape(-1) >= threshold

    def exclusion_reason(self, threshold: float = 0.5) -> str | None:
        """Why this referent cannot be scored (``empty_mask``, ``no_inside_patch``, ``no_outside_patch``) or
        None."""
        if self.mask_area_fraction == 0:
            return "empty_mask"
        inside = self.inside(threshold)
        if not inside.any():
            return "no_inside_patch"
        if inside.all():
            return "no_outside_patch"
        return None


def patch_coverage(mask: np.ndarray, geometry, grid: tuple[int, int],
                   pad_to_square: bool | None = None) -> PatchCoverage:
    """Coverage ``c_i`` of each cell of ``grid`` over the model input by the (H, W) ``mask``.

    ``grid`` is the patch grid (e.g. 24x24) or, for a per-pixel map, the crop size itself.
    """
    mask = np.asarray(mask)
    h, w = mask.shape
    p = transform_params(geometry, h, w, pad_to_square)
    rows, cols = int(grid[0]), int(grid[1])
    ys, _ = p.to_original(np.linspace(0, p.out[0], rows + 1), np.zeros(rows + 1))
    _, xs = p.to_original(np.zeros(cols + 1), np.linspace(0, p.out[1], cols + 1))
    m = mask.astype(np.float64)
    wy, wx = _overlap(h, ys), _overlap(w, xs)
    cov = wy @ m @ wx.T / (np.diff(ys)[:, None] * np.diff(xs)[None, :])
    total = float(m.sum())
    inside_window = float(wy.sum(0) @ m @ wx.sum(0))
    cut = 0.0 if total == 0 else max(0.0, 1.0 - inside_window / total)
    return PatchCoverage(coverage=np.clip(cov, 0.0, 1.0), crop_cut_share=cut,
                         mask_area_fraction=total / (h * w), params=p)
