"""Drawing a token selection on the image the model sees (returns ``(fig, ax)``)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def kept_token_mask(indices, grid: tuple[int, int]) -> np.ndarray:
    """(rows, cols) boolean grid, True where a patch is kept (negative entries, VisionZip's CLS, are no
    patch)."""
    m = np.zeros(grid[0] * grid[1], dtype=bool)
    idx = np.asarray(indices, dtype=int)
    m[idx[idx >= 0]] = True
    return m.reshape(grid)


def plot_kept_tokens(image: np.ndarray, indices, grid: tuple[int, int], ax=None, title: str | None = None,
                     dim: float = 0.25, order: bool = False):
    """Show ``image`` (H, W, 3 in [0, 1]) with pruned patches dimmed; returns ``(fig, ax)``.

    With ``order=True`` each kept patch is labelled with its position in the LLM input.
    """
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(3.3, 3.3))
    h, w = image.shape[:2]
    keep = kept_token_mask(indices, grid)
    ph, pw = h / grid[0], w / grid[1]
    # each pixel takes its token's cell, (y * rows) // h: exact where the grid does not divide the image
    # evenly
    rows, cols = (np.arange(h) * grid[0]) // h, (np.arange(w) * grid[1]) // w
    shade = keep[rows[:, None], cols[None, :]].astype(float)
    ax.imshow(image * (dim + (1 - dim) * shade[..., None]))
    if order:
        for pos, idx in enumerate(np.asarray(indices, dtype=int)):
            if idx < 0:  # the CLS token (VisionZip) has no place on the grid
                continue
            r, c = divmod(idx, grid[1])
            ax.text((c + 0.5) * pw, (r + 0.5) * ph, str(pos), ha="center", va="center", fontsize=4, color="w")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return fig, ax
