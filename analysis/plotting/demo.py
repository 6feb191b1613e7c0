"""Figures of ``litelvlm demo``: token selections per method, similarity maps, the reversal histogram."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from litelvlm.pruning.plot import plot_kept_tokens  # noqa: E402

__all__ = ["plot_demo_selection_grid", "plot_demo_similarity_maps", "plot_demo_reversal_hist"]


def plot_demo_selection_grid(images: list[np.ndarray], captions: list[str], inside: list[np.ndarray],
                             selections: dict[str, list[np.ndarray]], grid: tuple[int, int]):
    """Rows = scenes, columns = the referent's patches then each method's kept tokens; returns ``(fig, ax)``.

    ``inside[r]`` is the (N,) bool referent mask on the grid; ``selections[method][r]`` the kept
    patch indices. Each title gives the share of the referent's patches the method kept.
    """
    methods = list(selections)
    rows, cols = len(images), 1 + len(methods)
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 2.1 * rows), squeeze=False)
    for r, (img, cap, ins) in enumerate(zip(images, captions, inside)):
        plot_kept_tokens(img, np.flatnonzero(ins), grid, ax=axes[r, 0])
        axes[r, 0].set_title(f'"{cap}"', fontsize=6.5)
        for c, m in enumerate(methods, start=1):
            kept = np.asarray(selections[m][r], dtype=int)
            recall = float(ins[kept].sum()) / max(1, int(ins.sum()))
            plot_kept_tokens(img, kept, grid, ax=axes[r, c])
            axes[r, c].set_title(f"{m}\nreferent kept {recall:.0%}", fontsize=6.5)
    axes[0, 0].set_ylabel("referent (mask)", fontsize=7)
    fig.tight_layout()
    return fig, axes


def plot_demo_similarity_maps(images: list[np.ndarray], captions: list[str], sims: list[np.ndarray],
                              inside: list[np.ndarray], grid: tuple[int, int], layer: int):
    """Per scene: the image with the referent's patches outlined, and the patch-text similarity map."""
    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 4.4), squeeze=False)
    for i, (img, cap, s, ins) in enumerate(zip(images, captions, sims, inside)):
        axes[0, i].imshow(img)
        h, w = img.shape[:2]
        ph, pw = h / grid[0], w / grid[1]
        for idx in np.flatnonzero(ins):
            rr, cc = divmod(int(idx), grid[1])
            axes[0, i].add_patch(plt.Rectangle((cc * pw, rr * ph), pw, ph, fill=False, ec="w", lw=0.6))
        axes[0, i].set_title(f'"{cap}"', fontsize=6.5)
        im = axes[1, i].imshow(np.asarray(s).reshape(grid), cmap="viridis")
        for idx in np.flatnonzero(ins):
            rr, cc = divmod(int(idx), grid[1])
            axes[1, i].add_patch(plt.Rectangle((cc - 0.5, rr - 0.5), 1, 1, fill=False, ec="r", lw=0.6))
        fig.colorbar(im, ax=axes[1, i], fraction=0.046, pad=0.02).ax.tick_params(labelsize=5)
        axes[1, i].set_title(f"patch-text similarity, layer {layer}\n(red: referent)", fontsize=6.5)
        for ax in axes[:, i]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    return fig, axes


def plot_demo_reversal_hist(df: pd.DataFrame, ax=None):
    """Histogram of per-sentence AUROC of reversed similarity, one line per layer; > 0.5 = reversal."""
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(4.2, 3.0))
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
