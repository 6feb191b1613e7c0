"""Position-switch figures: what the three position rules do to each method's [SEG] states and masks on the
sample image (``litelvlm positions``): the kept tokens at their original RoPE positions (keep), renumbered
(renumber), or under PosPad (pad: original positions, one marker per run of dropped tokens)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.common.presentation.style import figure, method_label, method_style, ordered

#: each rule's bar in the mask panel: (column of its mask IoU with all N tokens, label, alpha, hatch)
RULE_BARS = (("mask_iou_keep_none", "keep", 1.0, ""), ("mask_iou_renumber_none", "renumber", 0.45, ""),
             ("mask_iou_pad_none", "pad", 0.75, "////"))
#: the [SEG] panel's bars: (column, label, alpha, hatch), each against keep's [SEG] states
SEG_BARS = (("seg_rel_diff_keep_renumber", "renumber vs keep", 0.45, ""),
            ("seg_rel_diff_pad_keep", "pad vs keep", 0.75, "////"))
#: the pad columns a table written before them lacks (drawn as not run)
PAD_DRAWN = ("pad_available", "seg_rel_diff_pad_keep", "mask_iou_pad_none")


def _grouped(ax, y, d: pd.DataFrame, methods: list[str], bars, colors) -> None:
    """One thin horizontal bar per (method, entry of ``bars``), grouped around each method's row."""
    height = 0.8 / len(bars)
    for i, (column, label, alpha, hatch) in enumerate(bars):
        ax.barh(y + (i - (len(bars) - 1) / 2) * height, d.loc[methods, column].fillna(0), height=height,
                color=colors, alpha=alpha, hatch=hatch, edgecolor="black" if hatch else None, linewidth=0.3)
        # a grey proxy per rule for the legend (the bars carry each method's colour)
        ax.barh([np.nan], [np.nan], color="0.4", alpha=alpha, hatch=hatch,
                edgecolor="black" if hatch else None, linewidth=0.3, label=label)


def plot_position_switch(table: pd.DataFrame, budget: int | None = None, ax=None):
    """Two panels at one budget (default: the smallest), one group of bars per method: the relative distance
    of the [SEG] states of renumber and of pad from keep's (‖rule − keep‖ / ‖keep‖; renumber's is the table's
    ‖keep − renumber‖ / ‖renumber‖), and each rule's mask IoU with the unpruned model's (keep, renumber, pad).
    Each method's official rule is in its label; methods whose tokens have no original position are marked
    n/a, and so is pad where it does not apply (a table written before the pad runs: none). Returns ``(fig,
    axes)``."""
    budget = int(table["budget"].min()) if budget is None else int(budget)
    d = table[table["budget"] == budget].set_index("method").copy()
    if d.empty:
        raise ValueError(f"no position-switch rows at budget {budget}")
    for column in PAD_DRAWN:
        if column not in d:
            d[column] = False if column == "pad_available" else np.nan
    methods = ordered(d.index)
    y = np.arange(len(methods))
    if ax is None:
        fig, axes = figure(2, aspect=0.18 + 0.06 * len(methods), ncols=2, sharey=True)
    else:
        fig, axes = ax[0].figure, ax
    colors = [method_style(m)["color"] for m in methods]
    left, right = axes
    _grouped(left, y, d, methods, SEG_BARS, colors)
    _grouped(right, y, d, methods, RULE_BARS, colors)
    for i, m in enumerate(methods):
        if not bool(d.loc[m, "keep_available"]):
            left.text(0.02, i, "n/a: no original positions", va="center", fontsize=6,
                      transform=left.get_yaxis_transform())
        elif not bool(d.loc[m, "pad_available"]) or pd.isna(d.loc[m, "seg_rel_diff_pad_keep"]):
            left.text(0.98, i, "pad n/a", va="center", ha="right", fontsize=6,
                      transform=left.get_yaxis_transform())
    left.set_yticks(y, [f"{method_label(m)} · {d.loc[m, 'official_rule']}" for m in methods], fontsize=6)
    left.invert_yaxis()
    left.set_xlabel("[SEG] state change from keep: ‖keep − renumber‖ / ‖renumber‖,\n"
                    "‖pad − keep‖ / ‖keep‖", fontsize=7)
    right.set_xlabel("mask IoU with all N tokens, per rule", fontsize=7)
    right.set_xlim(0, 1.02)
    # under both panels' axis labels, never over them
    handles, labels = right.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=6, frameon=False)
    fig.suptitle(f"Kept tokens at their original positions (keep), renumbered, or PosPad (pad), K={budget} "
                 "(after each method: its official rule)", fontsize=7)
    return fig, axes
