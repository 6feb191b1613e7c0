"""The accuracy tables: grounding (``eval-grounding``: cIoU and gIoU) and video (``eval-video``: J, F, J&F),
one per run, read from its ``summary.csv`` (each figure and its 95% interval), its ``comparisons.csv`` (the
paired swap tests: the share of the unpruned model's score with its interval, and the marks) and its
``config.json`` (the caption).

Rows: the unpruned model (``none``, all tokens) first, then one block per budget, largest first, LiteLVLM
first in each. Per metric: the figure ×100 with its marks, its 95% interval, and its share of ``none``'s
figure (%, with the UNADJUSTED interval of the ratio's paired test, labelled so). A mark says the paired swap
test of ``comparisons.csv`` finds the row different by the run's one criterion (Holm-adjusted p <
:data:`ALPHA` within the comparison's family, :mod:`analysis.common.stats.significance`; the caption says the
family's size): ``†`` from ``none``, ``‡`` from LiteLVLM at the same budget; the direction is the figures'.
An interval over fewer than :data:`MIN_UNITS` units (images, videos) is not shown: the caption says n instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.common.presentation.markdown_table import finite
from analysis.common.presentation.screen import METRIC_LABELS
from analysis.common.runs.run_tree import Run
from analysis.common.stats import permutation
from analysis.common.stats import significance as sig
from analysis.common.stats.bootstrap import MIN_UNITS
from analysis.common.stats.significance import ALPHA, MARK_LITELVLM, MARK_NONE
from analysis.tables import caption as cap
from analysis.tables import leaderboard as board
from analysis.tables.render import Table
from litelvlm.errors import LiteLVLMError
from litelvlm.methods import is_baseline

#: the method the second mark compares with
LITELVLM = "litelvlm"


@dataclass(frozen=True)
class Accuracy:
    """One accuracy table's kind: its name, the metrics (column, shown name), the resampled unit and the
    budget's column title."""

    kind: str
    metrics: tuple[tuple[str, str], ...]
    unit: str
    budget_title: str
    #: the metric the leaderboard's differences are shown in (:mod:`analysis.tables.leaderboard`)
    lead: str = ""

    @property
    def lead_metric(self) -> tuple[str, str]:
        """(column, shown name) of :attr:`lead`, the first metric where none is named."""
        return next((m for m in self.metrics if m[0] == self.lead), self.metrics[0])


GROUNDING = Accuracy("grounding", tuple((m, METRIC_LABELS[m]) for m in ("ciou", "giou")), "image", "K")
VIDEO = Accuracy("video", (("J", "J"), ("F", "F"), ("J&F", "J&F")), "video", "K per frame", lead="J&F")


def read_run(run: Run) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(summary.csv, comparisons.csv or None when the run has none)."""
    summary = pd.read_csv(run.folder / "summary.csv")
    path = run.folder / "comparisons.csv"
    return summary, (pd.read_csv(path) if path.is_file() else None)


def ordered(summary: pd.DataFrame) -> tuple[pd.DataFrame, list[int]]:
    """The rows in the table's order (``none``, then budgets largest first, LiteLVLM first in each, the
    others as the run listed them) and the rows where a block starts."""
    methods = list(dict.fromkeys(summary["method"]))
    rank = {m: (0 if is_baseline(m) else 1 if m == LITELVLM else 2 + i) for i, m in enumerate(methods)}
    base = summary["method"].map(is_baseline)
    key = pd.DataFrame({"base": ~base, "budget": -summary["budget"], "rank": summary["method"].map(rank)})
    order = key.sort_values(["base", "budget", "rank"], kind="stable").index
    rows = summary.loc[order].reset_index(drop=True)
    blocks = [i for i in range(len(rows))
              if i == 0 or (rows["budget"][i], is_baseline(rows["method"][i]))
              != (rows["budget"][i - 1], is_baseline(rows["method"][i - 1]))]
    return rows, blocks


def metric_numbers(row: pd.Series, metric: str, none_value: float, comparisons: pd.DataFrame | None) -> dict:
    """One row's numbers for ``metric``: the figure and its interval, its share of ``none``'s (%) with the
    ratio's interval, and the Holm-adjusted p of its tests against ``none`` and LiteLVLM (NaN: not tested)."""
    method, budget, value = row["method"], int(row["budget"]), float(row[metric])
    vs_none = sig.comparison_row(comparisons, metric, method, budget, "none")
    vs_lite = sig.comparison_row(comparisons, metric, method, budget, LITELVLM)
    if is_baseline(method):
        pct, pct_lo, pct_hi = 100.0, math.nan, math.nan
    elif vs_none:
        pct, pct_lo, pct_hi = (100.0 * float(vs_none[k]) for k in ("ratio", "ratio_lo", "ratio_hi"))
    else:
        pct, pct_lo, pct_hi = 100.0 * value / none_value if none_value else math.nan, math.nan, math.nan
    return {metric: value, f"{metric}_lo": float(row.get(f"{metric}_lo", math.nan)),
            f"{metric}_hi": float(row.get(f"{metric}_hi", math.nan)), f"{metric}_pct_none": pct,
            f"{metric}_pct_none_lo": pct_lo, f"{metric}_pct_none_hi": pct_hi,
            f"{metric}_p_vs_none": float(vs_none.get("p_adjusted", math.nan)),
            f"{metric}_p_vs_litelvlm": float(vs_lite.get("p_adjusted", math.nan))}


def marks(numbers: dict, metric: str) -> str:
    """``†`` where the row differs from ``none``, ``‡`` where it differs from LiteLVLM (the run's one
    criterion, :func:`analysis.common.stats.significance.significant`)."""
    return sig.marks(numbers[f"{metric}_p_vs_none"], numbers[f"{metric}_p_vs_litelvlm"])


def _interval(lo: float, hi: float, units: int, scale: float = 100.0) -> str:
    if units < MIN_UNITS or not finite(lo, hi):
        return "—"
    return f"[{scale * lo:.1f}, {scale * hi:.1f}]"


def budget_text(method: str, budget: int) -> str:
    """The budget as a table shows it: ``all (576)`` for the unpruned model (``all`` where its N depends on
    the image and the run stored 0), else K."""
    if is_baseline(method):
        return f"all ({budget})" if budget > 0 else "all"
    return str(budget)


def shown_row(numbers: dict, spec: Accuracy, method: str, budget: int, units: int) -> dict:
    """The cells of one row: method, budget (``all (N)`` for ``none``), and per metric the figure ×100 with
    its marks, its interval and its share of ``none``'s."""
    cells = {"Method": method, spec.budget_title: budget_text(method, budget)}
    for metric, name in spec.metrics:
        pct = numbers[f"{metric}_pct_none"]
        share = f"{pct:.1f}" if finite(pct) else "—"
        ratio = _interval(numbers[f"{metric}_pct_none_lo"], numbers[f"{metric}_pct_none_hi"], units, 1.0)
        cells[name] = f"{100 * numbers[metric]:.1f}{marks(numbers, metric)}"
        cells[f"{name} 95% CI"] = _interval(numbers[f"{metric}_lo"], numbers[f"{metric}_hi"], units)
        cells[f"{name} % of none (unadjusted CI)"] = share if ratio == "—" else f"{share} {ratio}"
    return cells


def units_of(summary: pd.DataFrame, comparisons: pd.DataFrame | None, config: dict, spec: Accuracy) -> int:
    """How many units the intervals resample: ``units`` of summary.csv, else of comparisons.csv, else the
    run's record (images; videos)."""
    for table in (summary, comparisons):
        if table is not None and "units" in table and table["units"].notna().any():
            return int(table["units"].max())
    if spec.unit == "image" and isinstance(config.get("images"), int):
        return config["images"]
    if "videos" in summary:
        return int(summary["videos"].max())
    raise LiteLVLMError("neither summary.csv, comparisons.csv nor config.json records how many units")


def accuracy_table(run: Run, root: Path, spec: Accuracy, name: str) -> Table:
    """The accuracy table of one run (see the module)."""
    summary, comparisons = read_run(run)
    missing = [m for m, _ in spec.metrics if m not in summary]
    if missing or "method" not in summary or "budget" not in summary:
        raise KeyError(missing[0] if missing else "method")
    rows, blocks = ordered(summary)
    base = rows[rows["method"].map(is_baseline)]
    units = units_of(summary, comparisons, run.config, spec)
    extra = board.present(summary)   # the leaderboard's columns, where the run has them
    family = sig.family_size(comparisons)
    data, shown = [], []
    for _, row in rows.iterrows():
        numbers = {"method": row["method"], "budget": int(row["budget"])}
        for metric, _ in spec.metrics:
            none_value = float(base[metric].iloc[0]) if len(base) else math.nan
            numbers.update(metric_numbers(row, metric, none_value, comparisons))
        numbers.update(units=units, weights=str(run.identity.get("weights")), **board.numbers(row, extra))
        data.append(numbers)
        shown.append({**shown_row(numbers, spec, row["method"], int(row["budget"]), units),
                      **board.cells(row, extra, *spec.lead_metric, units, family)})
    text = (grounding_caption if spec is GROUNDING else video_caption)(run, root, summary, units,
                                                                       comparisons is not None, family)
    return Table(name, text, pd.DataFrame(shown), pd.DataFrame(data), blocks, run.folder, cap.is_random(run))


def statistics_text(spec: Accuracy, units: int, summary: pd.DataFrame, tested: bool,
                    family: int | None = None) -> str:
    """The caption's sentences on the intervals, the share of ``none`` and the marks (``family``: the size of
    the run's families of adjusted p)."""
    names = ", ".join(n for _, n in spec.metrics)
    text = (f"{names} ×100 with 95% intervals over {spec.unit}s; % of none: the share of the unpruned "
            "model's figure, with the unadjusted 95% interval of the paired swap test (it may exclude 100 "
            "where no mark is shown: the marks are adjusted). ")
    if tested and units < permutation.min_units():   # no p can reach 0.05: no mark can appear
        text += (f"With {cap.count(units, spec.unit + 's')} no difference can be marked (the paired test "
                 f"needs {permutation.min_units()}: its smallest p is 2 / 2^n). ")
    elif tested:
        text += (f"{MARK_NONE} differs from none, {MARK_LITELVLM} from LiteLVLM at the same budget "
                 f"({sig.criterion_text(family, spec.unit)}; comparisons.csv). ")
    else:
        text += "The run holds no comparisons.csv: no marks. "
    if units < MIN_UNITS:
        text += (f"With {cap.count(units, spec.unit + 's')} no interval is shown (at least {MIN_UNITS} "
                 "needed). ")
    heavy = sorted({m for v in summary.get("heavy_tails", pd.Series(dtype=str)).dropna() for m in
                    str(v).split(",") if m in dict(spec.metrics)})
    if heavy:
        text += (f"Heavy tails in {', '.join(dict(spec.metrics)[m] for m in heavy)} (this project's label): "
                 "the interval may cover less than 95%. ")
    return text + board.caption(board.present(summary), *spec.lead_metric, spec.unit)


def grounding_caption(run: Run, root: Path, summary: pd.DataFrame, units: int, tested: bool,
                      family: int | None = None) -> str:
    """The grounding table's caption from the run's record."""
    c = run.config
    data = f"{c.get('dataset', 'refcoco')} {c.get('split', '')} ({c.get('split_by', '')}), " \
           f"{c.get('protocol', 'official')} protocol"
    sentences = f", {int(summary['n'].max())} sentences" if "n" in summary else ""
    return (f"{cap.opening(run)}. Referring segmentation on {data}; {cap.count(units, 'images')}{sentences}. "
            + statistics_text(GROUNDING, units, summary, tested, family) + f"Run: {cap.where(run, root)}.")


def video_caption(run: Run, root: Path, summary: pd.DataFrame, units: int, tested: bool,
                  family: int | None = None) -> str:
    """The video table's caption from the run's record."""
    c = run.config
    if c.get("synthetic_videos"):
        data = f"{c['synthetic_videos']} synthetic videos of {c.get('synthetic_frames')} frames"
    else:
        data = f"{c.get('video_dir') and Path(str(c['video_dir'])).name or 'videos'} {c.get('split', '')}"
    counts = ", ".join(f"{int(summary[k].max())} {k}" for k in ("objects", "expressions") if k in summary)
    note = f" Note: {c['note']}." if c.get("note") else ""
    return (f"{cap.opening(run)}. Referring video segmentation on {data}; {cap.count(units, 'videos')}"
            f"{f' ({counts})' if counts else ''}; budgets count each frame's visual tokens. "
            + statistics_text(VIDEO, units, summary, tested, family) + f"Run: {cap.where(run, root)}.{note}")


__all__ = ["ALPHA", "Accuracy", "GROUNDING", "LITELVLM", "MARK_LITELVLM", "MARK_NONE", "MIN_UNITS", "VIDEO",
           "accuracy_table", "budget_text", "marks", "metric_numbers", "ordered",
           "statistics_text"]
