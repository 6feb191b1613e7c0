"""Figures of ``litelvlm demo``: token selections per method, similarity maps, the reversal histogram."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import patheffects  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from analysis.common.presentation.style import model_name  # noqa: E402
from litelvlm.pruning.plot import plot_kept_tokens  # noqa: E402

__all__ = ["plot_demo_selection_grid", "plot_demo_similarity_maps", "plot_demo_reversal_hist",
           "outline_patches"]

#: the referent outline: white with a black edge, visible on bright (kept) and dimmed (dropped) patches
#: the most methods side by side in one row of the selection grid; more wrap onto further rows, so that every
#: title stays readable
MAX_METHOD_COLUMNS = 5
_OUTLINE = {"color": "white", "lw": 1.3,
            "path_effects": [patheffects.withStroke(linewidth=2.4, foreground="black")]}


def outline_patches(ax, inside: np.ndarray, grid: tuple[int, int], size: tuple[float, float] | None = None,
                    **style) -> None:
    """Draw the outline of the union of the grid patches where ``inside`` (N,) is True on ``ax``:
    in pixels of an image of ``size`` (h, w), or in grid units (one patch = 1, centred) without it."""
    cells = np.asarray(inside, dtype=bool).reshape(grid)
    ph, pw = (size[0] / grid[0], size[1] / grid[1]) if size else (1.0, 1.0)
    off = -0.5  # imshow puts pixel (or cell) i at i, its edges at i -/+ 0.5
    padded = np.pad(cells, 1)
    segments = []
    for r, c in zip(*np.nonzero(cells)):
        x0, y0, x1, y1 = c * pw + off, r * ph + off, (c + 1) * pw + off, (r + 1) * ph + off
        pr, pc = r + 1, c + 1
        if not padded[pr - 1, pc]:
            segments.append([(x0, y0), (x1, y0)])
        if not padded[pr + 1, pc]:
            segments.append([(x0, y1), (x1, y1)])
        if not padded[pr, pc - 1]:
            segments.append([(x0, y0), (x0, y1)])
        if not padded[pr, pc + 1]:
            segments.append([(x1, y0), (x1, y1)])
    if segments:
        ax.add_collection(LineCollection(segments, capstyle="round", **{**_OUTLINE, **style}), autolim=False)


def plot_demo_selection_grid(images: list[np.ndarray], captions: list[str], inside: list[np.ndarray],
                             selections: dict[str, list[np.ndarray]], grid: tuple[int, int],
                             budget: int | None = None):
    """Rows = scenes, columns = the image with its referent outlined, then each method's kept tokens
    (bright) and dropped tokens (dimmed), the referent outlined again; returns ``(fig, ax)``.

    ``inside[r]`` is the (N,) bool referent mask on the grid (patches at least half inside the
    referent's mask); ``selections[method][r]`` the kept patch indices. Each title gives the share of
    the referent's patches the method kept; a scene without a referent patch is not scored. ``budget``: the K
    each method kept (of the grid's N), stated in every method's title.
    """
    n = grid[0] * grid[1]
    kept_of = f", K = {budget} of {n}" if budget is not None else ""
    methods = list(selections)
    per_row = max(1, min(len(methods), MAX_METHOD_COLUMNS))
    blocks = -(-len(methods) // per_row) if methods else 1   # rows of methods per scene
    rows, cols = len(images) * blocks, 1 + per_row
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.1 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for r, (img, cap, ins) in enumerate(zip(images, captions, inside)):
        size, top = img.shape[:2], r * blocks
        axes[top, 0].set_axis_on()
        plot_kept_tokens(img, np.arange(ins.size), grid, ax=axes[top, 0])
        outline_patches(axes[top, 0], ins, grid, size)
        note = "" if ins.any() else "\n(no patch >= 50% inside: not scored)"
        axes[top, 0].set_title(f'"{cap}"{note}', fontsize=6.5)
        for i, m in enumerate(methods):
            ax = axes[top + i // per_row, 1 + i % per_row]
            ax.set_axis_on()
            kept = np.asarray(selections[m][r], dtype=int)
            kept = kept[kept >= 0]
            plot_kept_tokens(img, kept, grid, ax=ax)
            outline_patches(ax, ins, grid, size)
            share = (f"referent kept {float(ins[kept].sum()) / int(ins.sum()):.0%}" if ins.any()
                     else "referent: not scored")
            ax.set_title(f"{m}{kept_of}\n{share}", fontsize=6.5)
    axes[0, 0].set_ylabel("image, referent outlined", fontsize=7)
    handles = [Patch(facecolor="0.85", edgecolor="0.5", label="kept token (shown bright)"),
               Patch(facecolor="0.2", edgecolor="0.5", label="dropped token (dimmed)"),
               Line2D([], [], label="referent: patches >= 50% inside its mask", **_OUTLINE)]
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    fig.legend(handles=handles, loc="upper center", ncol=3, fontsize=7, frameon=False,
               bbox_to_anchor=(0.5, 1.0))
    return fig, axes


def plot_demo_similarity_maps(images: list[np.ndarray], captions: list[str], sims: list[np.ndarray],
                              inside: list[np.ndarray], grid: tuple[int, int], layer: int):
    """Per scene: the image with the referent's patches outlined, and the patch-text similarity map."""
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 4.4), squeeze=False)
    for i, (img, cap, s, ins) in enumerate(zip(images, captions, sims, inside)):
        axes[0, i].imshow(img)
        outline_patches(axes[0, i], ins, grid, img.shape[:2])
        axes[0, i].set_title(f'"{cap}"', fontsize=6.5)
        im = axes[1, i].imshow(np.asarray(s).reshape(grid), cmap="viridis")
        outline_patches(axes[1, i], ins, grid)
        cbar = fig.colorbar(im, ax=axes[1, i], fraction=0.046, pad=0.02)
        cbar.ax.tick_params(labelsize=5)
        cbar.set_label("patch·text dot product\n(joint space; no unit)", fontsize=5.5)
        where = "outlined: referent" if np.any(ins) else "no patch >= 50% inside the referent"
        axes[1, i].set_title(f"patch-text similarity, layer {layer}\n({where})", fontsize=6.5)
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig, axes


def plot_demo_reversal_hist(df: pd.DataFrame, ax=None, model: str | None = None):
    """Histogram of per-sentence AUROC of reversed similarity, one line per layer; > 0.5 = reversal; the title
    names the ``model`` and the number of sentences n each line counts."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(4.2, 3.0))
    counts = sorted({int(c) for c in df.groupby("layer")["auroc_reversed"].count()})
    n = "/".join(map(str, counts)) or "0"
    name = f" ({model_name(model)})" if model else ""   # never the machine's path of a local model
    ax.set_title(f"Reversed-similarity AUROC per sentence{name}, n = {n} sentences", fontsize=7)
    bins = np.linspace(0, 1, 21)
    for layer, sub in df.groupby("layer", sort=True):
        ax.hist(sub["auroc_reversed"].dropna(), bins=bins, histtype="step", lw=1.4,
                label=f"layer {layer} (mean {sub['auroc_reversed'].mean():.2f})")
    ax.axvline(0.5, color="k", ls=":", lw=0.8)
    ax.set_xlabel("AUROC of reversed similarity (> 0.5: referent ranked low)")
    ax.set_ylabel("sentences")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig, ax
