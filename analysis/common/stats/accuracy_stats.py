"""The statistics of an accuracy table (``eval-grounding``, ``eval-video``): a 95% interval beside every
figure, paired comparisons of the methods (``comparisons.csv``) and the paper's two claims (``claims.csv``).

The heavy-tail label and the reading of the paper's claims are this project's.

Details: docs/statistics.md (``analysis.common.stats.accuracy_stats``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.common.stats import bootstrap, permutation, proportion, significance
from analysis.common.stats.bootstrap import UnitStat
from litelvlm.methods import BASELINE, TABLE, get_method, is_baseline

#: the method the paper's claims are about, and the reference of the second set of comparisons
LITELVLM = "litelvlm"
#: the values every accuracy figure (cIoU, gIoU, box accuracy, J, F, J&F) can take: an interval stays within
#: them
RANGE = (0.0, 1.0)
#: the hit rates (a mean of 0/1 rows): their interval is Clopper-Pearson's
#: (:mod:`analysis.common.stats.proportion`)
HIT_RATES = ("box_acc",)
#: the paper's claims: (name, what the paper says, threshold)
RETENTION_CLAIM = ("retains_90pct", "maintains 90% of the original performance", 0.90)
MARGIN_CLAIM = ("margin_over_5pct", "outperforms existing methods by over 5% across diverse token budgets",
                0.05)
#: methods that are not "existing methods" for the margin: the baseline, LiteLVLM's own variants and this
#: project's ablations of it, random selection (the analysis oracles are left out too: :func:`competitors`)
NOT_COMPETITORS = (BASELINE, "clip_topsim", "random", *(m for m in TABLE if m.startswith(LITELVLM)))

COMPARISON_COLUMNS = ["metric", "budget", "method", "reference", "reference_budget", "value",
                      "reference_value",
                      "difference", "difference_lo", "difference_hi", "p", "p_adjusted", "correction",
                      "family_size", "ratio", "ratio_lo", "ratio_hi", "units", "unit", "p_mc",
                      "difference_mc", "ratio_mc", "test"]
CLAIM_COLUMNS = ["claim", "statement", "metric", "budget", "method", "compared_with", "value", "lo", "hi",
                 "threshold", "verdict", "interval_clears", "note", "mc", "p", "p_adjusted", "family_size",
                 "units"]

Stats = dict[tuple[str, int], dict[str, UnitStat]]


def is_hit_rate(metric: str) -> bool:
    """Whether ``metric`` is a hit rate (a mean of 0/1 rows: :data:`HIT_RATES`, or a family's own
    ``<prefix>_<hit rate>``)."""
    return any(metric == m or metric.endswith("_" + m) for m in HIT_RATES)


def figure_interval(metric: str, stat: UnitStat, n_boot: int, seed: int) -> tuple[float, float, float]:
    """(low, high, Monte Carlo error) of one figure: Clopper-Pearson over the effective rows for a hit rate
    (:func:`analysis.common.stats.proportion.hit_rate_interval`), else the studentized bootstrap within
    :data:`RANGE`."""
    if is_hit_rate(metric):
        return proportion.hit_rate_interval(stat)[1:]
    return bootstrap.studentized(stat, n_boot, seed, bounds=RANGE)[1:]


def _labels(summary: pd.DataFrame, stats: Stats, metrics: list[str], unit: str) -> dict[str, list]:
    """The columns saying each row's resampling unit, its number and the metrics with heavy tails."""
    units, heavy = [], []
    for method, budget in zip(summary["method"], summary["budget"], strict=True):
        row = stats.get((method, int(budget)), {})
        found = [row[m] for m in metrics if m in row]
        units.append(max((s.n_units for s in found), default=0))
        heavy.append(",".join(m for m in metrics if m in row and not is_hit_rate(m)
                              and proportion.tail_label(row[m]) == proportion.HEAVY))
    return {"unit": [unit] * len(summary), "units": units, "heavy_tails": heavy}


def with_intervals(summary: pd.DataFrame, stats: Stats, metrics: list[str], n_boot: int,
                   seed: int, unit: str | None = None) -> pd.DataFrame:
    """``summary`` (one row per method and budget) with ``<metric>_lo`` / ``<metric>_hi`` and
    ``<metric>_mc`` (:func:`figure_interval`) right after each of ``metrics`` present in it, and with
    ``unit`` given, the columns ``unit``, ``units`` and ``heavy_tails`` at its end; the existing columns
    untouched."""
    out = summary.copy()
    present = [m for m in metrics if m in summary.columns]
    for metric in present:
        bounds = []
        for method, budget in zip(summary["method"], summary["budget"], strict=True):
            stat = stats.get((method, int(budget)), {}).get(metric)
            bounds.append((np.nan,) * 3 if stat is None else figure_interval(metric, stat, n_boot, seed))
        at = out.columns.get_loc(metric) + 1
        for k, suffix in enumerate(("lo", "hi", "mc")):
            out.insert(at + k, f"{metric}_{suffix}", [b[k] for b in bounds])
    if unit is not None:
        out = out.assign(**_labels(summary, stats, present, unit))
    return out


def _baseline(stats: Stats) -> tuple[str, int] | None:
    found = sorted(k for k in stats if is_baseline(k[0]))
    return found[0] if found else None


def _comparison(stats: Stats, metric: str, key: tuple[str, int], ref: tuple[str, int], n_boot: int, seed: int,
                unit: str) -> dict | None:
    """One row of ``comparisons.csv``: ``key`` (method, budget) against ``ref`` in ``metric`` (None where one
    of them lacks the metric)."""
    a, b = stats[key].get(metric), stats[ref].get(metric)
    if a is None or b is None:
        return None
    got = permutation.paired_test(a, b, n_boot, seed)
    return {"metric": metric, "budget": key[1], "method": key[0], "reference": ref[0],
            "reference_budget": ref[1], "value": got["a"], "reference_value": got["b"],
            **{k: got[k] for k in ("difference", "difference_lo", "difference_hi", "p", "ratio", "ratio_lo",
                                   "ratio_hi", "units")}, "unit": unit,
            **{k: got[k] for k in ("p_mc", "difference_mc", "ratio_mc", "test")}}


def comparisons_table(stats: Stats, metrics: list[str], n_boot: int, seed: int, unit: str,
                      extra_references: tuple[str, ...] = ()) -> pd.DataFrame:
    """Every method at every budget against ``none`` and against LiteLVLM at that budget (see the module);
    then, after those rows, every method against each of ``extra_references`` at the same budget where the run
    holds it (the leaderboard's ``random`` and ``downsample``: :mod:`analysis.common.stats.leaderboard`). Each
    comparison's rows (its metrics) are one family of Holm's adjustment
    (:func:`analysis.common.stats.significance.adjust`)."""
    base = _baseline(stats)
    rows = []
    for metric in metrics:
        for method, budget in sorted(k for k in stats if not is_baseline(k[0])):
            refs = ([base] if base else []) + [r for r in [(LITELVLM, budget)] if r in stats and r
                                               != (method, budget)]
            rows += [row for ref in refs
                     if (row := _comparison(stats, metric, (method, budget), ref, n_boot, seed, unit))]
    for reference in extra_references:
        for metric in metrics:
            rows += [row for key in sorted(k for k in stats if not is_baseline(k[0]) and k[0] != reference)
                     if (reference, key[1]) in stats
                     and (row := _comparison(stats, metric, key, (reference, key[1]), n_boot, seed, unit))]
    significance.adjust(rows)
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def competitors(methods: list[str]) -> list[str]:
    """The "existing methods" among ``methods``: all but :data:`NOT_COMPETITORS` (LiteLVLM's variants among
    them) and the analysis oracles."""
    return [m for m in methods if m not in NOT_COMPETITORS and not (m in TABLE and get_method(m).oracle)]


def _verdict(value: float, lo: float, threshold: float, judged: bool, strict: bool) -> tuple[str, object]:
    """(verdict, whether the interval's bound is past the threshold too) of one claim's estimate."""
    if not judged or not np.isfinite(value):
        return "not judged", None
    past = (lambda x: x > threshold) if strict else (lambda x: x >= threshold)
    return ("MET" if past(value) else "MISSED"), (None if np.isnan(lo) else bool(past(lo)))


def no_interval(units: int) -> str:
    """The note of a claim judged on fewer units than its paired test needs for a 95% interval
    (:func:`~analysis.common.stats.permutation.min_units`: 6), where none exists."""
    return f"no interval (n = {units}, fewer than the paired test's {permutation.min_units()})"


def _why(value: float, lo: float, units: int) -> str:
    if not np.isfinite(value):
        return "no estimate (a score of 0 or an empty denominator)"
    if units < permutation.min_units():
        return no_interval(units)
    return "" if np.isfinite(lo) else "no interval (the paired test rejects no value on one side)"


def _claim_row(claim: tuple, metric: str, budget: int, against: str, got: dict, judged: bool,
               note: str) -> dict:
    """One claim's row from its comparison's figure ``got`` (``value``, ``lo``, ``hi``, ``mc``, ``p``,
    ``p_adjusted``, ``family_size``, ``units``)."""
    name, statement, threshold = claim
    if got["units"] < permutation.min_units():
        got = {**got, "lo": float("nan"), "hi": float("nan"), "mc": float("nan")}
    verdict, clears = _verdict(got["value"], got["lo"], threshold, judged, strict=claim == MARGIN_CLAIM)
    return {"claim": name, "statement": statement, "metric": metric, "budget": budget, "method": LITELVLM,
            "compared_with": against, "value": got["value"], "lo": got["lo"], "hi": got["hi"],
            "threshold": threshold, "verdict": verdict, "interval_clears": clears,
            "note": note or _why(got["value"], got["lo"], got["units"]), "mc": got["mc"], "p": got["p"],
            "p_adjusted": got["p_adjusted"], "family_size": got["family_size"],
            "units": got["units"]}


def _retention(row: dict) -> dict:
    """LiteLVLM's share of the unpruned score: its comparison with ``none`` as it stands."""
    return {"value": row["ratio"], "lo": row["ratio_lo"], "hi": row["ratio_hi"], "mc": row["ratio_mc"],
            "p": row["p"], "p_adjusted": row["p_adjusted"],
            "family_size": row["family_size"], "units": row["units"]}


def _margin(row: dict) -> dict:
    """LiteLVLM minus a competitor: the competitor's comparison with LiteLVLM (competitor minus LiteLVLM),
    negated: the same test, interval, p and Holm-adjusted p."""
    return {"value": -row["difference"], "lo": -row["difference_hi"], "hi": -row["difference_lo"],
            "mc": row["difference_mc"], "p": row["p"], "p_adjusted": row["p_adjusted"],
            "family_size": row["family_size"], "units": row["units"]}


def _missing(claim: tuple, metric: str, budget, note: str) -> dict:
    return {"claim": claim[0], "statement": claim[1], "metric": metric, "budget": budget, "method": LITELVLM,
            "compared_with": BASELINE if claim == RETENTION_CLAIM else "", "threshold": claim[2],
            "verdict": "not judged", "note": note}


def claims_table(stats: Stats, metrics: list[str], n_boot: int, seed: int, weights: str,
                 comparisons: pd.DataFrame | None = None) -> pd.DataFrame:
    """The paper's two claims per metric and budget (the margin per competitor), read from ``comparisons``
    (:func:`comparisons_table` of the same ``stats``, computed when not given); judged on real weights only
    (see the module)."""
    if comparisons is None:
        comparisons = comparisons_table(stats, metrics, n_boot, seed, "")
    judged = weights == "real"
    note = "" if judged else f"{weights} weights: no claim is tested"
    base = _baseline(stats)
    budgets = sorted({b for _, b in stats if (LITELVLM, b) in stats})
    others = competitors(sorted({m for m, _ in stats}))
    rows = []
    for metric in metrics:
        for budget in budgets:
            got = significance.comparison_row(comparisons, metric, LITELVLM, budget, BASELINE) or None \
                if base else None
            rows.append(_missing(RETENTION_CLAIM, metric, budget, "no unpruned run") if got is None else
                        _claim_row(RETENTION_CLAIM, metric, budget, BASELINE, _retention(got), judged, note))
        for budget in budgets:
            pairs = [(m, significance.comparison_row(comparisons, metric, m, budget, LITELVLM))
                     for m in others]
            pairs = [(m, got) for m, got in pairs if got]
            rows += [_claim_row(MARGIN_CLAIM, metric, budget, m, _margin(got), judged, note)
                     for m, got in pairs] or [_missing(MARGIN_CLAIM, metric, budget,
                                                       "no existing method run at this budget")]
        if not budgets:
            rows += [_missing(c, metric, float("nan"), "litelvlm was not run") for c in (RETENTION_CLAIM,
                                                                                          MARGIN_CLAIM)]
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)
