"""Referring-video figures: J&F per pruning method against the per-frame budget (``litelvlm eval-video``), for
VideoGLaMM (per-frame pruning of its CLIP stream; LLM-side methods on its whole visual sequence) or UniPixel's video
path (the same fraction of the video's merged tokens), each point with its 95% bootstrap interval over videos where
``summary.csv`` has it, and the claims table (:func:`~analysis.common.stat_plots.plot_claims_table`)."""

from __future__ import annotations

import textwrap

import pandas as pd

from analysis.common.stat_plots import draw_interval, plot_claims_table, reference_band, spread
from analysis.common.style import METHOD_ORDER, figure, method_label, method_style

__all__ = ["plot_jf_vs_budget", "plot_claims_table"]

#: the one sentence every VideoGLaMM video figure carries
WEIGHTS_NOTE = ("The paper's video numbers need VideoGLaMM's RVOS fine-tuned weights, which are not public: "
                "these come from the weights named below.")
#: per model family of an ``eval-video`` folder: (title name, x label, weights note)
FAMILY_LABELS = {
    "videoglamm": ("VideoGLaMM", "CLIP tokens kept per frame (of 576; LLM-side methods: the same fraction of the "
                                 "LLM's visual tokens)", WEIGHTS_NOTE),
    "unipixel": ("UniPixel (video path)", "per-frame budget (of 576): the same fraction of the video's merged tokens",
                 "The paper reports no UniPixel video numbers; these come from the weights named below."),
}


def _order(methods) -> list[str]:
    found = list(dict.fromkeys(methods))
    return [m for m in METHOD_ORDER if m in found] + sorted(m for m in found if m not in METHOD_ORDER)


def plot_jf_vs_budget(summary: pd.DataFrame, metric: str = "J&F", ax=None, family: str = "videoglamm"):
    """One line per method: ``metric`` (J&F, J or F) against the per-frame budget (of 576), the unpruned model
    (``none``) as a dashed line; ``family``: the model family of the run (its title and axis labels). With
    ``<metric>_lo``/``_hi`` columns each point's 95% interval is a bar and the unpruned model's a band. Returns
    ``(fig, ax)``."""
    if metric not in ("J&F", "J", "F"):
        raise ValueError(f"metric must be J&F, J or F; got {metric!r}")
    if family not in FAMILY_LABELS:
        raise ValueError(f"family must be one of {', '.join(FAMILY_LABELS)}; got {family!r}")
    name, xlabel, weights_note = FAMILY_LABELS[family]
    if ax is None:
        fig, ax = figure(1, aspect=0.75)
    else:
        fig = ax.figure
    none = summary[summary["method"] == "none"]
    pruned = summary[summary["method"] != "none"]
    methods = _order(pruned["method"])
    for i, method in enumerate(methods):
        d = pruned[pruned["method"] == method].sort_values("budget")
        ax.plot(d["budget"], d[metric], ms=3, label=method_label(method), **method_style(method))
        if f"{metric}_lo" in d:   # each method's bars a little apart from the others'
            draw_interval(ax, spread(d["budget"], i, len(methods), 0.03), d[f"{metric}_lo"], d[f"{metric}_hi"],
                          method_style(method)["color"])
    if not none.empty:
        ax.axhline(float(none[metric].iloc[0]), color="black", ls="--", lw=0.8, label="all 576 tokens")
        if f"{metric}_lo" in none:
            reference_band(ax, float(none[f"{metric}_lo"].iloc[0]), float(none[f"{metric}_hi"].iloc[0]))
    budgets = sorted(pruned["budget"].unique())
    if budgets:
        ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.set_xlabel("\n".join(textwrap.wrap(xlabel, 60)), fontsize=7)
    ax.set_ylabel(metric, fontsize=7)
    note = "\n".join(textwrap.wrap(weights_note, 70))
    ax.set_title(f"{name}, Ref-DAVIS protocol: {metric} vs per-frame budget\n{note}", fontsize=6)
    ax.legend(fontsize=5, frameon=False, ncols=2)
    return fig, ax
