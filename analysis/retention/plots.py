"""Token retention, drawn like the paper's animation: input, similarity-aware tokens,
context-aware tokens and the final kept set, per method and budget."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Patch

from analysis.common.presentation.style import apply_style, figsize, method_label, palette

__all__ = ["PART_ORDER", "part_colors", "token_overlay", "plot_token_parts", "plot_retention_stages",
           "plot_retention_grid"]

#: Parts a method's kept tokens can come from, in legend order.
PART_ORDER = ("similarity", "context", "important", "diverse", "dominant", "contextual", "kept",
              "anchors_and_buffers", "registers")
_PART_LABELS = {"similarity": "similarity-aware", "context": "context-aware",
                "anchors_and_buffers": "anchors and buffers"}


def part_colors() -> dict[str, tuple[float, float, float]]:
    """A fixed colour-blind-safe colour per part name."""
    return dict(zip(PART_ORDER, palette(len(PART_ORDER))))


def token_overlay(image: np.ndarray, grid: tuple[int, int], parts: dict[int, str], dim: float = 0.25,
                  tint: float = 0.6) -> np.ndarray:
    """``image`` (H, W, 3 in [0, 1]) with pruned patches dimmed and kept ones tinted by part colour."""
    h, w = image.shape[:2]
    colors = part_colors()
    keep = np.zeros(grid[0] * grid[1])
    color = np.zeros((grid[0] * grid[1], 3))
    for patch, part in parts.items():
        if patch < 0:  # the CLS token (VisionZip) has no place on the grid
            continue
        keep[patch] = 1.0
        color[patch] = colors.get(part, colors["kept"])
    keep, color = keep.reshape(grid), color.reshape(*grid, 3)
    rows = (np.arange(h) * grid[0] // h)
    cols = (np.arange(w) * grid[1] // w)
    k = keep[rows][:, cols][..., None]
    c = color[rows][:, cols]
    shown = image * (1 - tint) + c * tint
    return np.clip(np.where(k > 0, shown, image * dim), 0, 1)


def _clean(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)


def part_names(parts) -> list[str]:
    """The part names present in ``parts``: those of :data:`PART_ORDER` in its order, then any other in
    order."""
    seen = list(dict.fromkeys(parts))
    return [p for p in PART_ORDER if p in seen] + [p for p in seen if p not in PART_ORDER]


def _legend(fig, parts) -> None:
    colors = part_colors()
    present = [p for p in part_names(parts) if p in colors]
    handles = [Patch(color=colors[p], label=_PART_LABELS.get(p, p)) for p in present]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5), frameon=False)


def plot_token_parts(image: np.ndarray, grid: tuple[int, int], patches, parts=None, ax=None,
                     title: str | None = None):
    """One image with the given patches kept (tinted by their part name); returns ``(fig, ax)``."""
    apply_style()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=figsize(1, 1.0))
    patches = np.asarray(patches, dtype=int)
    parts = ["kept"] * len(patches) if parts is None else list(parts)
    ax.imshow(token_overlay(image, grid, dict(zip(patches.tolist(), parts))), interpolation="nearest")
    _clean(ax)
    if title:
        ax.set_title(title)
    return fig, ax


#: the parts of a selection in LiteLVLM's two stages (similarity-aware, then context-aware tokens)
STAGE_PARTS = ("similarity", "context")


def staged_methods(table: pd.DataFrame) -> list[str]:
    """The methods of a ``retention.parquet`` table whose kept tokens are in LiteLVLM's two stages
    (:data:`STAGE_PARTS`; its variants, and its ablation ``clip_topsim``), in the table's order."""
    parts = table.groupby("method", sort=False)["part"].unique()
    return [m for m, got in parts.items() if set(STAGE_PARTS) <= set(got)]


def plot_retention_stages(image: np.ndarray, table: pd.DataFrame, grid: tuple[int, int],
                          method: str = "litelvlm", budget: int | None = None, image_id: str | None = None):
    """Input, similarity-aware tokens, context-aware tokens, final kept set for one method/budget.

    ``table`` is the ``retention.parquet`` table; ``budget`` defaults to 64 when the table has
    it, else its middle budget. Returns ``(fig, axes)``.
    """
    apply_style()
    if budget is None:
        budgets = sorted(set(table["budget"]))
        budget = 64 if 64 in budgets else budgets[len(budgets) // 2]
    sub = table[(table["method"] == method) & (table["budget"] == budget)]
    if image_id is not None:
        sub = sub[sub["image_id"] == image_id]
    if sub.empty:
        raise ValueError(f"no retention rows for method={method!r}, budget={budget}, image_id={image_id!r}")
    text = sub["text"].iloc[0]
    fig, axes = plt.subplots(1, 4, figsize=figsize(2, 0.3), layout="constrained")
    axes[0].imshow(image, interpolation="nearest")
    _clean(axes[0])
    axes[0].set_title("input")
    # the selection's first two parts (LiteLVLM's two stages)
    stages = (part_names(sub["part"]) + [None, None])[:2]
    for ax, part in zip(axes[1:3], stages):
        if part is None:
            ax.set_axis_off()
            continue
        rows = sub[sub["part"] == part]
        plot_token_parts(image, grid, rows["patch"], rows["part"], ax=ax,
                         title=f"{_PART_LABELS.get(part, part)} ({len(rows)})")
    plot_token_parts(image, grid, sub["patch"], sub["part"], ax=axes[3], title=f"kept: {len(sub)} tokens")
    fig.suptitle(f"{method_label(method)}, K={budget}: \u201c{text}\u201d")
    _legend(fig, sub["part"])
    return fig, axes


def plot_retention_grid(image: np.ndarray, table: pd.DataFrame, grid: tuple[int, int], methods=None,
                        budgets=None, image_id: str | None = None):
    """Kept tokens for every method (rows) at every budget (columns), tinted by part; returns ``(fig,
    axes)``."""
    apply_style()
    if image_id is not None:
        table = table[table["image_id"] == image_id]
    methods = list(dict.fromkeys(table["method"])) if methods is None else list(methods)
    budgets = sorted(set(table["budget"]), reverse=True) if budgets is None else list(budgets)
    n_r, n_c = len(methods), len(budgets)
    width = figsize(2)[0]
    fig, axes = plt.subplots(n_r, n_c + 1, figsize=(width, width / (n_c + 1) * n_r + 0.5),
                             layout="constrained", squeeze=False)
    for r, method in enumerate(methods):
        axes[r, 0].imshow(image, interpolation="nearest")
        _clean(axes[r, 0])
        axes[r, 0].set_ylabel(method, rotation=0, ha="right", va="center")
        for c, k in enumerate(budgets):
            sub = table[(table["method"] == method) & (table["budget"] == k)]
            plot_token_parts(image, grid, sub["patch"], sub["part"], ax=axes[r, c + 1],
                             title=f"K={k}" if r == 0 else None)
    axes[0, 0].set_title("input")
    # a title row above the budgets' headers: the run's label in the top right corner stays clear of them
    fig.suptitle("kept visual tokens per method (rows) and budget K (columns)", fontsize=7)
    _legend(fig, table[table["method"].isin(methods)]["part"])
    return fig, axes
