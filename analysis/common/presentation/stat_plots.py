"""Plots of the accuracy tables' statistics (:mod:`analysis.common.stats.accuracy_stats`), shared by the
grounding, video and paired-comparison figures: interval bars, the claims table and the paired differences
against budget."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from analysis.common.presentation.screen import METRIC_LABELS
from analysis.common.presentation.style import (
    budget_axis,
    figsize,
    figure,
    method_label,
    method_style,
    ordered,
)
from analysis.common.stats import permutation, significance
from analysis.common.stats.bootstrap import MIN_UNITS
from litelvlm.registry.families import card, family_names

__all__ = ["draw_interval", "readable_range", "reference_band", "spread", "plot_claims_table",
           "plot_paired_differences", "metric_slug"]

#: how a verdict is coloured in the claims table
VERDICT_COLORS = {"MET": "#d9f0d3", "MISSED": "#f4cccc", "not judged": "#e6e6e6"}


def metric_label(metric: str) -> str:
    """How ``metric`` is written on an axis: :data:`METRIC_LABELS`, a family's own metric
    (``<family>_<metric>``, its abilities' ``own_metric``) after its family card's display name, else as it
    is."""
    prefix, _, base = metric.rpartition("_")
    while prefix and base not in METRIC_LABELS:   # "box_acc": the metric's name holds a "_"
        prefix, _, head = prefix.rpartition("_")
        base = f"{head}_{base}"
    if metric in METRIC_LABELS or not prefix or base not in METRIC_LABELS:
        return METRIC_LABELS.get(metric, metric)
    name = card(prefix).display_name if prefix in family_names() else prefix
    return f"{name} {METRIC_LABELS[base]}"
#: what each claim's value is
_CLAIM_LABELS = {"retains_90pct": "share of unpruned kept", "margin_over_5pct": "margin over it"}


def metric_slug(metric: str) -> str:
    """A file-name form of a metric (``J&F`` -> ``jf``, ``ciou`` -> ``ciou``)."""
    return metric.lower().replace("&", "")




def enough_units(units, n: int, need: int = MIN_UNITS) -> np.ndarray:
    """Per point, whether its interval rests on at least ``need`` units (:data:`MIN_UNITS`; ``units`` None:
    drawn)."""
    if units is None:
        return np.ones(n, dtype=bool)
    u = np.broadcast_to(np.asarray(units, dtype=float), (n,))
    return ~(u < need)


def few_units_note(units, unit: str = "unit", need: int = MIN_UNITS) -> str:
    """``"; n = 2 images: no interval (fewer than 3)"`` where some point rests on fewer than ``need`` units
    (:data:`MIN_UNITS`), else ``""``."""
    u = np.asarray([] if units is None else units, dtype=float).ravel()
    u = u[np.isfinite(u)]
    if not len(u) or u.min() >= need:
        return ""
    return f"; n = {int(u.min())} {unit}{'s' if u.min() != 1 else ''}: no interval (fewer than {need})"


#: the least part of an accuracy metric's 0-1 range (cIoU, gIoU, J, F, J&F) its axis spans, so that a small
#: difference never fills the axis and looks steep (this project's rule, docs/figures.md)
MIN_METRIC_SPAN = 0.1


def readable_range(ax, low: float = 0.0, high: float = 1.0, span: float = MIN_METRIC_SPAN) -> None:
    """Widen ``ax``'s y range (matplotlib's, around the data and intervals drawn) to at least ``span`` of the
    metric's natural range [``low``, ``high``], around its middle and within that range."""
    lo, hi = ax.get_ylim()
    if hi - lo >= span:
        return
    start = max(low, min((lo + hi) / 2 - span / 2, high - span))
    ax.set_ylim(start, start + span)


def draw_interval(ax, x, lo, hi, color, lw: float = 0.9, zorder: float = 2.5, units=None,
                  need: int = MIN_UNITS) -> None:
    """95% interval bars from ``lo`` to ``hi`` at ``x`` (none for NaN bounds or under ``need`` ``units``)."""
    x, lo, hi = (np.asarray(v, dtype=float) for v in (x, lo, hi))
    ok = np.isfinite(lo) & np.isfinite(hi) & enough_units(units, len(x), need)
    if ok.any():
        ax.vlines(x[ok], lo[ok], hi[ok], colors=[color], lw=lw, zorder=zorder, alpha=0.85)


def spread(x, i: int, n: int, step: float = 0.05) -> np.ndarray:
    """Budgets ``x`` moved a little apart for the ``i``-th of ``n`` methods on a log2 budget axis, so that
    their interval bars do not hide each other."""
    return np.asarray(x, dtype=float) * 2 ** (step * (i - (n - 1) / 2))


def reference_band(ax, lo: float, hi: float, color="0.45", units=None) -> None:
    """The unpruned model's interval as a horizontal band across the axes (nothing for NaN bounds or fewer
    than :data:`MIN_UNITS` ``units``)."""
    if np.isfinite(lo) and np.isfinite(hi) and enough_units(units, 1)[0]:
        ax.axhspan(lo, hi, color=color, alpha=0.12, lw=0, zorder=1)


def _bound(x: float, share: bool) -> str:
    if not np.isfinite(x):
        return "unbounded" if np.isinf(x) else "none"
    return f"{100 * x:.1f}" if share else f"{100 * x:+.2f}"


def _claim_cell(row) -> str:
    if not np.isfinite(row["value"]):
        return "-"
    share = row["claim"] == "retains_90pct"
    value = f"{100 * row['value']:.1f}%" if share else f"{100 * row['value']:+.2f} pts"
    if not (np.isfinite(row["lo"]) and np.isfinite(row["hi"])):
        units = row.get("units")
        n = f" (n = {int(units)})" if units is not None and np.isfinite(units) else ""
        return f"{value} [no interval{n}]" if np.isnan(row["lo"]) and np.isnan(row["hi"]) else \
            f"{value} [{_bound(row['lo'], share)}, {_bound(row['hi'], share)}]"
    fmt = "{:.1f}" if share else "{:+.2f}"
    return f"{value} [{fmt.format(100 * row['lo'])}, {fmt.format(100 * row['hi'])}]"


def _p_cell(row) -> str:
    """The claim's Holm-adjusted p-value and its family's size (those of its comparison in
    ``comparisons.csv``, the run's one criterion)."""
    return significance.p_text(row.get("p_adjusted"), row.get("family_size"))


def plot_claims_table(claims: pd.DataFrame, title: str = "The paper's claims"):
    """The claims table (``claims.csv``, optionally with a ``protocol`` column) as a figure: per claim,
    metric, budget and method compared with, the estimate with its 95% interval, the Holm-adjusted p-value of
    the paired test with its family's size (those of ``comparisons.csv``), the threshold and the verdict
    (coloured).
    Returns (fig, ax)."""
    cols = [c for c in ("protocol", "claim", "metric", "budget", "compared_with") if c in claims]
    with_p = "p_adjusted" in claims
    head = [{"claim": "claim", "compared_with": "against"}.get(c, c) for c in cols] + \
        ["estimate [95% interval]"] + (["p (adjusted)"] if with_p else []) + ["threshold", "verdict"]
    cells, colors = [], []
    for _, row in claims.iterrows():
        shown = [_CLAIM_LABELS.get(row[c], row[c]) if c == "claim" else
                 ("" if pd.isna(row[c]) else str(int(row[c]) if c == "budget" else row[c])) for c in cols]
        threshold = f"{100 * row['threshold']:.0f}%" if row["claim"] == "retains_90pct" else \
            f"> {100 * row['threshold']:.0f} pts"
        if "metric" in cols:
            shown[cols.index("metric")] = metric_label(row["metric"])
        cells.append(shown + [_claim_cell(row)] + ([_p_cell(row)] if with_p else []) + [threshold,
                                                                                          row["verdict"]])
        colors.append(["white"] * (len(cells[-1]) - 1) + [VERDICT_COLORS.get(row["verdict"], "white")])
    fig, ax = figure(2, figsize=figsize(2, height=0.45 + 0.16 * (len(cells) + 1)))
    ax.axis("off")
    ax.set_xticks([])   # no hidden tick labels left on the table's axes
    ax.set_yticks([])
    if cells:
        table = ax.table(cellText=cells, colLabels=head, cellColours=colors, bbox=(0, 0, 1, 1),
                         cellLoc="center")
        table.auto_set_font_size(False)
        table.set_fontsize(5.5)
        table.auto_set_column_width(list(range(len(head))))
    else:
        ax.text(0.5, 0.5, "no claims table in these results", ha="center", va="center", fontsize=7)
    notes = sorted({n for n in claims.get("note", pd.Series(dtype=str)).dropna() if n})
    if with_p and (claims["claim"] == "margin_over_5pct").any():
        notes.append("margin: LiteLVLM minus each existing method; the interval of their paired test "
                     "(unadjusted) and its Holm-adjusted p")
    ax.set_title("\n".join([title] + [textwrap.shorten(n, 110) for n in notes]), fontsize=7)
    return fig, ax


def plot_paired_differences(comparisons: pd.DataFrame, metric: str, reference: str, ax=None):
    """Each method minus ``reference`` (``none`` or ``litelvlm``) in ``metric`` against the budget, with the
    unadjusted 95% interval of the paired swap test (``comparisons.csv``); a filled marker where the run's one
    criterion marks the difference (Holm-adjusted p < 0.05 within the comparison's family,
    :mod:`analysis.common.stats.significance`), so a bar may leave 0 with a hollow marker. Returns
    (fig, ax)."""
    d = comparisons[(comparisons["metric"] == metric) & (comparisons["reference"] == reference)]
    if ax is None:
        fig, ax = figure(2, aspect=0.4)
    else:
        fig = ax.figure
    methods = ordered(d["method"])
    for i, m in enumerate(methods):
        g = d[d["method"] == m].sort_values("budget")
        x = spread(g["budget"], i, len(methods), 0.06)   # side by side on the log2 axis
        style = method_style(m)
        ax.plot(x, g["difference"], label=method_label(m), ms=3.5, **style)
        draw_interval(ax, x, g["difference_lo"], g["difference_hi"], style["color"],
                      units=g["units"] if "units" in g else None, need=permutation.min_units())
        hollow = ~np.array([significance.significant(p) for p in g["p_adjusted"]], dtype=bool)
        ax.plot(x[hollow], g["difference"].to_numpy(float)[hollow], ls="none", marker=style["marker"], ms=3.5,
                mfc="white", mec=style["color"], zorder=style["zorder"] + 0.5)
    ax.axhline(0.0, color="k", lw=0.8)
    if not d.empty:
        budget_axis(ax, d["budget"])
    unit = d["unit"].iloc[0] if len(d) and "unit" in d else "unit"
    name = metric_label(metric)
    ax.set_ylabel(f"Δ {name} (method − {reference})")
    family = significance.family_size(d)
    size = f", family of {family}" if family else ""
    ax.set_title(f"{name}: each method minus {reference} on the same {unit}s; unadjusted 95% intervals of "
                 f"the paired swap test;\nfilled: Holm-adjusted p < {significance.ALPHA} "
                 f"({significance.FAMILY}{size})"
                 f"{few_units_note(d['units'] if 'units' in d else None, unit, permutation.min_units())}",
                 fontsize=6)
    if methods:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    return fig, ax
