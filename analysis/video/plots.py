"""Referring-video figures: J&F per pruning method against the per-frame budget (``litelvlm eval-video``), for
VideoGLaMM (per-frame pruning of its CLIP stream; LLM-side methods on its whole visual sequence) or UniPixel's
video path (the same fraction of the video's merged tokens), each point with its 95% bootstrap interval over
videos where ``summary.csv`` has it, and the claims table
(:func:`~analysis.common.presentation.stat_plots.plot_claims_table`)."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import pandas as pd

from analysis.common.presentation.stat_plots import (
    draw_interval,
    few_units_note,
    plot_claims_table,
    readable_range,
    reference_band,
    spread,
)
from analysis.common.presentation.style import figure, method_label, method_style, ordered
from analysis.video.options import DATASET_NAMES
from analysis.video.statistics import DAVIS_METRICS
from litelvlm.methods import is_baseline
from litelvlm.video.datasets import REF_DAVIS

__all__ = ["VideoLabels", "frame_tokens", "plot_jf_vs_budget", "plot_claims_table"]

#: the x axis of a run that records no budget reading of its own: K of each frame's 576 CLIP tokens (a family
#: that prunes its CLIP stream per frame)
PER_FRAME_CLIP = ("CLIP tokens kept per frame (of 576; LLM-side methods: the same fraction of the LLM's "
                  "visual tokens)")


@dataclass(frozen=True)
class VideoLabels:
    """What a video figure says of the run that made it: the model family's ``name`` (its title), the
    ``xlabel`` (what a per-frame budget means on it), the ``note`` on the weights, and the ``dataset`` whose
    protocol it ran (``eval-video --dataset``) with its ``split`` where recorded."""

    name: str
    xlabel: str = PER_FRAME_CLIP
    note: str = ""
    dataset: str = REF_DAVIS
    split: str = ""

    @property
    def protocol(self) -> str:
        """The protocol the run used, as its title names it: ``MeViS protocol on valid_u``."""
        name = DATASET_NAMES.get(self.dataset, self.dataset)
        return f"{name} protocol" + (f" on {self.split}" if self.split else "")

    @property
    def suffix(self) -> str:
        """What the run's figure names end with: ``_<dataset>`` (``jf_mevis``), nothing for Ref-DAVIS-17 (the
        names of the runs before the other datasets)."""
        return "" if self.dataset == REF_DAVIS else f"_{self.dataset}"


def frame_tokens(summary: pd.DataFrame) -> int | None:
    """The tokens a frame of the run holds: ``none``'s ``context_tokens`` (all of them), None when not
    recorded."""
    rows = summary[summary["method"].map(is_baseline)]
    if rows.empty or "context_tokens" not in rows or pd.isna(rows["context_tokens"].iloc[0]):
        return None
    return int(rows["context_tokens"].iloc[0])


def plot_jf_vs_budget(summary: pd.DataFrame, metric: str = "J&F", ax=None, labels: VideoLabels | None = None):
    """One line per method: ``metric`` (J&F, J or F) against the per-frame budget (of 576), the unpruned
    baseline as a dashed line; ``labels``: what the run's model family and dataset say (its title and axis
    labels). With ``<metric>_lo``/``_hi`` columns each point's 95% interval is a bar and the unpruned model's
    a band. Returns ``(fig, ax)``."""
    if metric not in DAVIS_METRICS:
        raise ValueError(f"metric must be J&F, J or F; got {metric!r}")
    if labels is None:
        raise ValueError("labels: the run's model family, what its budget means and its weights note")
    name, xlabel, weights_note = labels.name, labels.xlabel, labels.note
    if ax is None:
        fig, ax = figure(1, aspect=0.75)
    else:
        fig = ax.figure
    is_base = summary["method"].map(is_baseline)
    none, pruned = summary[is_base], summary[~is_base]
    methods = ordered(pruned["method"])
    for i, method in enumerate(methods):
        d = pruned[pruned["method"] == method].sort_values("budget")
        ax.plot(d["budget"], d[metric], ms=3, label=method_label(method), **method_style(method))
        if f"{metric}_lo" in d:   # each method's bars a little apart from the others'
            draw_interval(ax, spread(d["budget"], i, len(methods), 0.03), d[f"{metric}_lo"],
                          d[f"{metric}_hi"], method_style(method)["color"],
                          units=d["units"] if "units" in d else None)
    frame = frame_tokens(summary)
    if not none.empty:
        ax.axhline(float(none[metric].iloc[0]), color="black", ls="--", lw=0.8,
                   label=f"none: all tokens ({frame} a frame)" if frame else "none: all tokens")
        if f"{metric}_lo" in none:
            reference_band(ax, float(none[f"{metric}_lo"].iloc[0]), float(none[f"{metric}_hi"].iloc[0]),
                           units=none["units"].iloc[0] if "units" in none else None)
    budgets = sorted(pruned["budget"].unique())
    if budgets:
        ax.set_xticks(budgets, [str(b) for b in budgets])
    xlabel += f"; this run's frames have {frame} tokens" if frame else ""
    ax.set_xlabel("\n".join(textwrap.wrap(xlabel, 60)), fontsize=7)
    ax.set_ylabel(metric, fontsize=7)
    readable_range(ax)
    note = "\n".join(textwrap.wrap(weights_note, 70))
    few = few_units_note(summary["units"] if "units" in summary else None, "video").lstrip("; ")
    few = f", {few}" if few else ""
    ax.set_title(f"{name}, {labels.protocol}: {metric} vs per-frame budget{few}\n{note}", fontsize=6)
    ax.legend(fontsize=5, frameon=False, ncols=2)
    return fig, ax
