"""The explorer's pictures as arrays, drawn with numpy alone (no matplotlib on the redraw path): the kept
tokens on the window, the similarity map with the referent's outline, a mask over the window; and PNG bytes of
any of them."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

#: colours of the parts of a selection (LiteLVLM's two: similarity-aware, context-aware), and of a kept token
#: of a method that names no part
PART_COLOURS = {"similarity": (230, 97, 1), "context": (44, 123, 182), "": (26, 152, 80),
                "other": (26, 152, 80)}
#: what the legend calls each part
PART_LABELS = {"similarity": "similarity-aware (lowest CLIP similarity to [EOS])",
               "context": "context-aware ([CLS]-attended context)", "": "kept", "other": "kept (other part)"}
MASK_COLOUR = (215, 48, 39)
OUTLINE_COLOUR = (255, 255, 255)
#: a perceptual colour ramp (viridis at 5 stops), interpolated linearly; the page's script uses the same stops
RAMP = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)], dtype=np.float64)


def colour_of(part: str) -> tuple[int, int, int]:
    """The colour a kept token of ``part`` is drawn in."""
    return PART_COLOURS.get(part, PART_COLOURS["other"])


def cell_edges(size: int, cells: int) -> np.ndarray:
    """The pixel edges of ``cells`` equal cells over ``size`` pixels (``cells + 1`` integers)."""
    return np.round(np.linspace(0, size, cells + 1)).astype(int)


def token_map(values: np.ndarray, grid: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """(H, W, ...) ``values`` of the N tokens (raster order, first axis) spread over their cells of the
    window."""
    rows, cols = grid
    ys, xs = cell_edges(shape[0], rows), cell_edges(shape[1], cols)
    r = np.searchsorted(ys, np.arange(shape[0]), side="right") - 1
    c = np.searchsorted(xs, np.arange(shape[1]), side="right") - 1
    return np.asarray(values).reshape(rows, cols, *np.shape(values)[1:])[r][:, c]


def kept_tokens(window: np.ndarray, grid: tuple[int, int], indices: list[int],
                parts: list[str]) -> np.ndarray:
    """(H, W, 3) uint8: the window darkened where tokens were dropped, the kept ones tinted by their part's
    colour."""
    n = grid[0] * grid[1]
    colour = np.zeros((n, 3))
    keep = np.zeros(n, dtype=bool)
    for i, p in zip(indices, parts):
        if 0 <= i < n:
            keep[i], colour[i] = True, colour_of(p)
    k = token_map(keep, grid, window.shape[:2])[..., None]
    tint = token_map(colour, grid, window.shape[:2])
    img = window.astype(np.float64)
    out = np.where(k, 0.55 * img + 0.45 * tint, 0.18 * img)
    _grid_lines(out, grid)
    return np.clip(out, 0, 255).astype(np.uint8)


def _grid_lines(img: np.ndarray, grid: tuple[int, int]) -> None:
    """Thin dark lines at the token cells' edges, drawn in place."""
    for y in cell_edges(img.shape[0], grid[0])[1:-1]:
        img[y, :] *= 0.6
    for x in cell_edges(img.shape[1], grid[1])[1:-1]:
        img[:, x] *= 0.6


def ramp(values: np.ndarray) -> np.ndarray:
    """(..., 3) colours of ``values`` in [0, 1] on :data:`RAMP`."""
    v = np.clip(np.asarray(values, dtype=np.float64), 0, 1) * (len(RAMP) - 1)
    lo = np.minimum(np.floor(v).astype(int), len(RAMP) - 2)
    t = (v - lo)[..., None]
    return RAMP[lo] * (1 - t) + RAMP[lo + 1] * t


def normalise(values: np.ndarray) -> np.ndarray:
    """``values`` scaled to [0, 1] by their minimum and maximum (constant values: all 0.5)."""
    values = np.asarray(values, dtype=np.float64)
    span = values.max() - values.min()
    return np.full_like(values, 0.5) if span == 0 else (values - values.min()) / span


def outline(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels of ``mask`` that touch a pixel outside it (2 pixels wide)."""
    m = np.asarray(mask, dtype=bool)
    inner = m.copy()
    for _ in range(2):
        shifted = np.pad(inner, 1, constant_values=False)
        inner = inner & shifted[:-2, 1:-1] & shifted[2:, 1:-1] & shifted[1:-1, :-2] & shifted[1:-1, 2:]
    return m & ~inner


def similarity_map(window: np.ndarray, grid: tuple[int, int], values: np.ndarray,
                   referent: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) uint8: each token's similarity on :data:`RAMP` (min..max of this text) over a faint window,
    the referent's outline on top where there is one."""
    colours = token_map(ramp(normalise(values)), grid, window.shape[:2])
    out = 0.8 * colours + 0.2 * window.astype(np.float64).mean(-1, keepdims=True)
    if referent is not None:
        out[outline(referent)] = OUTLINE_COLOUR
    return np.clip(out, 0, 255).astype(np.uint8)


def mask_overlay(window: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: the window with ``mask`` filled in :data:`MASK_COLOUR` and outlined."""
    out = window.astype(np.float64)
    m = np.asarray(mask, dtype=bool)
    out[m] = 0.5 * out[m] + 0.5 * np.array(MASK_COLOUR)
    out[outline(m)] = MASK_COLOUR
    return out.astype(np.uint8)


def png(img: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) or (H, W, 4) uint8 array (for the page and files)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


def jpeg(img: np.ndarray) -> bytes:
    """JPEG bytes of an (H, W, 3) uint8 array: the widget's redraws (a few ms, where a PNG takes tens)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def data_uri(img: np.ndarray) -> str:
    """A ``data:image/png;base64,...`` URI of ``img`` (for the self-contained page)."""
    return "data:image/png;base64," + base64.b64encode(png(img)).decode("ascii")
