"""Position-switch figures: what keeping the kept tokens' original RoPE positions, instead of renumbering
them, does to each method's [SEG] states and masks on the sample image (``litelvlm positions``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.common.style import METHOD_ORDER, figure, method_label, method_style


def _order(methods) -> list[str]:
    found = list(dict.fromkeys(methods))
    return [m for m in METHOD_ORDER if m in found] + sorted(m for m in found if m not in METHOD_ORDER)


def plot_position_switch(table: pd.DataFrame, budget: int | None = None, ax=None):
    """Two panels at one budget (default: the smallest), one bar per method: the relative distance between the
    [SEG] states with kept positions and renumbered ones, and the IoU of their masks (dots: each rule's mask
    IoU with the unpruned model's; filled: keep, open: renumber). Each method's official rule is in its label;
    methods whose tokens have no original position are marked n/a. Returns ``(fig, axes)``."""
    budget = int(table["budget"].min()) if budget is None else int(budget)
    d = table[table["budget"] == budget].set_index("method")
    if d.empty:
        raise ValueError(f"no position-switch rows at budget {budget}")
    methods = _order(d.index)
    y = np.arange(len(methods))
    if ax is None:
        fig, axes = figure(2, aspect=0.18 + 0.045 * len(methods), ncols=2, sharey=True)
    else:
        fig, axes = ax[0].figure, ax
    colors = [method_style(m)["color"] for m in methods]
    left, right = axes
    left.barh(y, d.loc[methods, "seg_rel_diff_keep_renumber"].fillna(0), color=colors)
    right.barh(y, d.loc[methods, "mask_iou_keep_renumber"].fillna(0), color=colors, alpha=0.55)
    right.scatter(d.loc[methods, "mask_iou_keep_none"], y - 0.18, color="black", s=10, zorder=4,
                  label="keep vs all tokens")
    right.scatter(d.loc[methods, "mask_iou_renumber_none"], y + 0.18, facecolors="none", edgecolors="black",
                  s=10, zorder=4, label="renumber vs all tokens")
    for i, m in enumerate(methods):
        if not bool(d.loc[m, "keep_available"]):
            left.text(0.02, i, "n/a: no original positions", va="center", fontsize=6,
                      transform=left.get_yaxis_transform())
    left.set_yticks(y, [f"{method_label(m)} · {d.loc[m, 'official_rule']}" for m in methods], fontsize=6)
    left.invert_yaxis()
    left.set_xlabel("[SEG] state change\n‖keep − renumber‖ / ‖renumber‖", fontsize=7)
    right.set_xlabel("mask IoU, keep vs renumber (bars)\nand with all N tokens (dots)", fontsize=7)
    right.set_xlim(0, 1.02)
    # under both panels' axis labels, never over them
    fig.legend(*right.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=6,
               frameon=False)
    fig.suptitle(f"Kept tokens at their original positions (keep) or renumbered, K={budget} "
                 "(after each method: its official rule)", fontsize=7)
    return fig, axes
