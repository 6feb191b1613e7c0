"""Grounding figures: cIoU / gIoU against the visual-token budget, one line per method with its 95% bootstrap
interval (``summary.csv``'s ``_lo``/``_hi``, where present), the unpruned model as a reference line with its
interval as a band, the ``official`` and ``per-expression`` protocols side by side, and the claims table
(:func:`~analysis.common.presentation.stat_plots.plot_claims_table`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from analysis.common.presentation.screen import METRIC_LABELS
from analysis.common.presentation.stat_plots import (
    draw_interval,
    few_units_note,
    plot_claims_table,
    readable_range,
    reference_band,
    spread,
)
from analysis.common.presentation.style import (
    apply_style,
    beside_columns,
    budget_axis,
    figsize,
    method_colors,
    method_label,
    method_style,
)
from litelvlm.methods import BASELINE

__all__ = ["plot_iou_vs_budget", "plot_grounding_protocols", "plot_protocol_difference", "plot_claims_table"]

_LABELS = {m: METRIC_LABELS[m] for m in ("ciou", "giou")}


def _check(summary: pd.DataFrame, metric: str) -> None:
    if metric not in _LABELS:
        raise ValueError(f"metric must be one of {sorted(_LABELS)}; got {metric!r}")
    missing = {"method", "budget", metric} - set(summary.columns)
    if missing:
        raise ValueError(f"summary lacks column(s) {sorted(missing)}")


def _against(rows: pd.DataFrame, name: str) -> str:
    """``<name> against budget``, or, where ``rows`` hold one budget, what a figure of a run that did not vary
    the budget shows: each method at that budget, beside the unpruned model."""
    budgets = sorted({int(b) for b in rows["budget"]}) if "budget" in rows else []
    if len(budgets) == 1:
        return f"{name} at K = {budgets[0]}, the run's one budget (no trend over budgets)"
    return f"{name} against budget"


def plot_iou_vs_budget(summary: pd.DataFrame, metric: str = "ciou", protocol: str | None = None, ax=None,
                       baseline: str = BASELINE, colors: dict | None = None, legend: bool = True):
    """``metric`` (ciou or giou) against budget, one line per method, ``baseline`` as a dashed line; with
    ``<metric>_lo``/``_hi`` columns, each point's 95% interval as a bar and the baseline's as a band.

    ``summary`` is ``summary.csv`` (optionally with a ``protocol`` column; ``protocol`` picks one).
    Returns (fig, ax).
    """
    _check(summary, metric)
    d = summary
    if protocol is not None and "protocol" in d:
        d = d[d["protocol"] == protocol]
    if ax is None:
        apply_style()
        fig, ax = plt.subplots(figsize=figsize(2, 0.4), layout="constrained")  # room for the legend outside
    else:
        fig = ax.figure
    methods = sorted(m for m in d["method"].unique() if m != baseline)
    colors = colors or method_colors(methods)
    for i, m in enumerate(methods):
        g = d[d["method"] == m].sort_values("budget")
        ax.plot(g["budget"], g[metric], ms=3, label=method_label(m),
                **{**method_style(m), "color": colors[m]})
        if f"{metric}_lo" in g:   # each method's bars a little apart from the others'
            draw_interval(ax, spread(g["budget"], i, len(methods)), g[f"{metric}_lo"], g[f"{metric}_hi"],
                          colors[m], units=g["units"] if "units" in g else None)
    base = d[d["method"] == baseline]
    if not base.empty:
        k = int(base["budget"].iloc[0])  # 0: every image's own N (a family whose N depends on the image)
        if f"{metric}_lo" in base:
            reference_band(ax, float(base[f"{metric}_lo"].iloc[0]), float(base[f"{metric}_hi"].iloc[0]),
                           units=base["units"].iloc[0] if "units" in base else None)
        ax.axhline(float(base[metric].iloc[0]), color="0.45", ls="-.", lw=1,  # methods' lines may be dashed
                   label=f"{baseline} (K={k})" if k else f"{baseline} (all tokens)")
    if not d.empty:
        budget_axis(ax, d.loc[d["method"] != baseline, "budget"] if methods else d["budget"])
    ax.set_ylabel(_LABELS[metric])
    readable_range(ax)
    title = _against(d[d["method"] != baseline], _LABELS[metric])
    unit = str(d["unit"].iloc[0]) if "unit" in d and len(d) else "image"
    ax.set_title(title + (f" ({protocol})" if protocol else "")
                 + few_units_note(d["units"] if "units" in d else None, unit))
    if legend and (methods or not base.empty):  # outside the axes: it never covers a line
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                  ncol=beside_columns(len(ax.get_lines())))
    return fig, ax


def plot_grounding_protocols(summary: pd.DataFrame, metric: str = "ciou", protocols: tuple[str, ...] = (
        "per-expression", "official"), baseline: str = BASELINE):
    """The protocols side by side (shared y axis), one panel each; ``summary`` has a ``protocol``
    column. Returns (fig, axes)."""
    _check(summary, metric)
    if "protocol" not in summary:
        raise ValueError("summary needs a 'protocol' column to compare protocols")
    present = [p for p in protocols if (summary["protocol"] == p).any()] or list(summary["protocol"].unique())
    apply_style()
    fig, axes = plt.subplots(1, len(present), figsize=figsize(2, 0.38), sharey=True, layout="constrained",
                             squeeze=False)
    colors = method_colors(sorted(m for m in summary["method"].unique() if m != baseline))
    for i, (ax, p) in enumerate(zip(axes[0], present)):
        plot_iou_vs_budget(summary, metric, protocol=p, ax=ax, baseline=baseline, colors=colors, legend=False)
        ax.set_title(p)
        if i:
            ax.set_ylabel("")
    handles: dict = {}  # one legend for both panels, outside them: every method of either panel once
    for ax in axes[0]:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="outside right center", fontsize=6)
    fig.suptitle(f"{_against(summary[summary['method'] != baseline], _LABELS[metric])}, by protocol",
                 fontsize=8)
    return fig, axes[0]


def plot_protocol_difference(difference: pd.DataFrame, metric: str = "ciou", ax=None):
    """``official`` minus ``per-expression`` (``protocol_difference``) against budget, per method.
    Returns (fig, ax)."""
    col = f"delta_{metric}"
    if col not in difference:
        raise ValueError(f"difference table lacks {col!r} (make it with "
                         "analysis.grounding.compute.protocol_difference)")
    if ax is None:
        apply_style()
        fig, ax = plt.subplots(figsize=figsize(2, 0.4), layout="constrained")  # room for the legend outside
    else:
        fig = ax.figure
    methods = sorted(difference["method"].unique())
    for m in methods:
        g = difference[difference["method"] == m].sort_values("budget")
        ax.plot(g["budget"], g[col], ms=3, label=method_label(m), **method_style(m))
    ax.axhline(0.0, color="k", lw=0.8)
    if not difference.empty:
        budget_axis(ax, difference["budget"])
    ax.set_ylabel(f"Δ{_LABELS[metric]} (official − per-expression)")
    ax.set_title("protocol difference" + (": the run's one budget" if difference["budget"].nunique() == 1
                                          else ""))
    if methods:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                  ncol=beside_columns(len(ax.get_lines())))
    return fig, ax
