"""Tables for the terminal and text files: a reader's view of a summary (the csv files keep every column), and
the headline's pieces. The one rule of what a command prints (its progress and a short summary; a full table
only with ``--verbose``, otherwise one line naming the file that holds it; at its end the headline, a few
lines stating the run's answer with intervals and n, which ``--quiet`` silences) is kept by the run's
:class:`analysis.common.runs.command.Screen`, a value its command makes from the command line and hands down,
never a global."""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from analysis.common.stats import permutation
from analysis.common.stats import significance as sig
from analysis.common.stats.bootstrap import MIN_UNITS
from litelvlm.methods import is_baseline

#: how a metric is written on the screen, in a table and on an axis (a family's own, ``<family>_<metric>``,
#: after its card's display name: :func:`analysis.common.presentation.stat_plots.metric_label`)
METRIC_LABELS = {"ciou": "cIoU", "giou": "gIoU", "box_acc": "box accuracy"}

#: the most columns a human-facing table shows
MAX_COLUMNS = 10
#: the fewest units (images, videos) an interval is printed over (the statistics' own rule,
#: :data:`analysis.common.stats.bootstrap.MIN_UNITS`); below, the headline says n instead
MIN_INTERVAL_N = MIN_UNITS
#: what ``±mc`` means where a table shows it
MC_NOTE = ("±mc: the Monte Carlo error of the interval's bounds (how much they move with another "
           "bootstrap seed), not a second interval")


def estimate(value: float, lo: float | None = None, hi: float | None = None, n: int | None = None,
             digits: int = 3, unit: str = "") -> str:
    """``value [lo, hi]`` for the headline; without an interval (NaN bounds, or ``n`` under
    :data:`MIN_INTERVAL_N` units) ``value (n = 2, no interval)``; ``unit`` names n's units when given."""
    if value is None or not isinstance(value, (int, float)) or math.isnan(value):
        return "n/a"
    v = f"{value:.{digits}f}"
    units = f" {unit}" if unit else ""
    few = n is not None and n < MIN_INTERVAL_N
    if few or lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return f"{v} (n = {n}{units}, no interval)" if n is not None else v
    return f"{v} [{lo:.{digits}f}, {hi:.{digits}f}]"


def counts_text(counts: Mapping[str, int], prefix: str = "", none: str = "none") -> str:
    """``13 no inside patch, 2 unreadable`` from ``{"excluded_no_inside_patch": 13, ...}`` (keys starting
    with ``prefix``, the prefix dropped, zeros left out): a count for a reader, never a Python dict."""
    parts = [f"{v} {k[len(prefix):].replace('_', ' ')}" for k, v in counts.items()
             if k.startswith(prefix) and v]
    return ", ".join(parts) or none


def _budget_order(budget) -> tuple:
    """Budgets largest first (numbers before other spellings)."""
    try:
        return (0, -float(budget))
    except (TypeError, ValueError):
        return (1, str(budget))


def methods_headline(summary: pd.DataFrame, metrics: Mapping[str, str], units: str = "images",
                     n_of: str = "sentences", digits: int = 3, n_col: str = "n",
                     delta: bool = False, comparisons: pd.DataFrame | None = None) -> list[str]:
    """The answer of a method x budget table (``summary.csv``, with ``<metric>_lo``/``_hi``, ``n_col`` and
    ``units``): the unpruned baseline's line first, then one line per budget, largest first, its methods best
    first (by the first metric), each metric (column -> label in ``metrics``) with its interval over
    ``units`` (the table's ``unit`` column names them; under :data:`MIN_INTERVAL_N` the header says n and no
    interval is printed) and, with ``delta``, its change from the baseline. With the run's ``comparisons``
    (comparisons.csv) each pruned figure carries the tables' marks (the run's one criterion,
    :mod:`analysis.common.stats.significance`) and a last line says what they mean and the family's size."""
    metrics = {m: label for m, label in metrics.items() if m in summary}
    if summary.empty or not metrics:
        return []
    first = summary.iloc[0]
    if isinstance(first.get("unit"), str) and first["unit"]:
        units = first["unit"] if first["unit"].endswith("s") else f"{first['unit']}s"
    counts = summary["units"] if "units" in summary else pd.Series(dtype=float)
    few = bool(len(counts.dropna())) and bool((counts.dropna() < MIN_INTERVAL_N).all())
    base = summary[[is_baseline(m) for m in summary["method"]]]
    ref = base.iloc[0] if delta and len(base) else None

    def cells(r) -> str:
        heavy = str(r.get("heavy_tails") or "").split(",") if isinstance(r.get("heavy_tails"), str) else []
        k = int(r["units"]) if "units" in r and pd.notna(r["units"]) else None
        said = []
        for m, label in metrics.items():
            v = f"{r[m]:.{digits}f}" if few else estimate(r[m], r.get(f"{m}_lo"), r.get(f"{m}_hi"), k,
                                                          digits, units)
            pruned = ref is not None and not is_baseline(r["method"])
            change = f" ({r[m] - ref[m]:+.{digits}f} vs {ref['method']})" if pruned else ""
            mark = sig.marks(*(sig.comparison_row(comparisons, m, r["method"], int(r["budget"]), ref).get(
                "p_adjusted") for ref in ("none", "litelvlm"))) if comparisons is not None else ""
            said.append(f"{label} {v}{mark}{change}" + (" (heavy tails)" if m in heavy else ""))
        return " / ".join(said)

    k = f" on {int(first['units'])} {units}" if "units" in summary and pd.notna(first["units"]) else ""
    n = f"n = {int(first[n_col])} {n_of}{k}" if n_col in summary else f"{len(summary)} rows"
    over = f"no interval: fewer than {MIN_INTERVAL_N} {units}" if few else f"intervals over {units}"
    lines = [f"{' / '.join(metrics.values())} per method and budget (best first; {over}), {n}:"]
    lines += [f"  {r['method']} (every token): {cells(r)}" for _, r in base.iterrows()]
    rest = summary.drop(index=base.index)
    for budget in sorted(rest["budget"].unique(), key=_budget_order):
        rows = rest[rest["budget"] == budget].sort_values(next(iter(metrics)), ascending=False, kind="stable")
        lines.append(f"  K={budget}: " + "; ".join(f"{r['method']} {cells(r)}" for _, r in rows.iterrows()))
    if comparisons is not None and len(comparisons):
        family, need = sig.family_size(comparisons), permutation.min_units()
        most = comparisons["units"].max() if "units" in comparisons else need
        if pd.notna(most) and most < need:   # no p can reach 0.05: no mark can appear
            lines.append(f"  no difference can be marked: n = {int(most)} {units}, fewer than the paired "
                         f"test's {need} (its smallest p is 2 / 2^n)")
        else:
            lines.append(f"  {sig.MARK_NONE} differs from none, {sig.MARK_LITELVLM} from litelvlm at the "
                         f"same budget ({sig.criterion_text(family, units.rstrip('s'))})")
    return lines


def table_notes(summary: pd.DataFrame, n_of: str = "sentences", n_col: str = "n") -> str:
    """The lines under a summary table in ``summary.txt`` saying what its columns count: ``n_col`` the
    ``n_of`` scored, ``units`` the units its intervals resample (a unit's rows go together), and what ``±mc``
    is."""
    lines = []
    if n_col in summary and "units" in summary:
        unit = str(summary["unit"].iloc[0]) if "unit" in summary and len(summary) else "unit"
        lines.append(f"{n_col}: the {n_of} scored; units: the {unit}s the intervals resample (all the {n_of} "
                     f"of one {unit} drawn together), so an interval rests on `units`, not `{n_col}`; none "
                     f"is given under {MIN_INTERVAL_N} {unit}s")
    if any(f"{c}_mc" in summary for c in summary.columns):
        lines.append(MC_NOTE)
    return "".join(f"{line}\n" for line in lines)


def with_intervals(summary: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """``summary`` with each figure that has ``<name>_lo`` / ``<name>_hi`` columns shown as one ``v [lo, hi]``
    cell (``v [lo, hi ±mc]`` with the interval's Monte Carlo error ``<name>_mc``; ``v (n = 2, no interval)``
    where the table's ``units`` are under :data:`MIN_INTERVAL_N` or the interval is NaN), the ``weights``
    column left out (the command prints a banner) and the unpruned baseline's budget shown as ``all`` (its
    stored 0 or 576 means every token): at most :data:`MAX_COLUMNS` columns in the usual cases."""
    out = summary.drop(columns=[c for c in ("weights",) if c in summary])
    if "method" in out and "budget" in out:
        out["budget"] = ["all" if is_baseline(m) else b for m, b in zip(out["method"], out["budget"])]

    def cell(v, lo, hi, mc, k) -> str:
        if not isinstance(v, (int, float)) or math.isnan(v):
            return ""
        if isinstance(k, (int, float)) and k < MIN_INTERVAL_N:   # an interval over 1 or 2 units says nothing
            return f"{v:.{digits}f} (n = {int(k)}, no interval)"
        if isinstance(lo, float) and isinstance(hi, float) and not (math.isnan(lo) or math.isnan(hi)):
            err = f" ±{mc:.{digits}f}" if isinstance(mc, float) and math.isfinite(mc) else ""
            return f"{v:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}{err}]"
        if isinstance(k, (int, float)) and not math.isnan(k):   # too few units for this statistic's interval
            return f"{v:.{digits}f} (n = {int(k)}, no interval)"
        return f"{v:.{digits}f}"

    units = out["units"] if "units" in out else [None] * len(out)
    for col in [c for c in out.columns if f"{c}_lo" in out and f"{c}_hi" in out]:
        mc = out[f"{col}_mc"] if f"{col}_mc" in out else [None] * len(out)
        out[col] = [cell(v, lo, hi, e, k) for v, lo, hi,
                    e, k in zip(out[col], out[f"{col}_lo"], out[f"{col}_hi"], mc, units)]
        out = out.drop(columns=[c for c in (f"{col}_lo", f"{col}_hi", f"{col}_mc") if c in out])
    return out


def board_text(board: pd.DataFrame | None, **to_string) -> str:
    """The text view's second table, the leaderboard's columns
    (:func:`analysis.common.stats.leaderboard.split_view`'s, each figure with its interval in one cell), under
    a title line; "" without one."""
    if board is None:
        return ""
    table = with_intervals(board).to_string(index=False, **to_string)
    return f"\n\nleaderboard (docs/grounding.md, Leaderboard columns):\n{table}"
