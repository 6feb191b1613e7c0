"""The statistics of an accuracy table (``eval-grounding``, ``eval-video``): a 95% bootstrap interval beside every
figure, paired comparisons of the methods (``comparisons.csv``) and the paper's two claims (``claims.csv``).

Each study gives, per (method, budget) and metric, a :class:`~analysis.common.bootstrap.UnitStat` over its
resampling unit (images or expressions for RefCOCO, videos for the video sets); everything here resamples those
units with :mod:`analysis.common.bootstrap`, ``n_boot`` replicates drawn with ``seed``.

* :func:`with_intervals`: ``<metric>_lo`` and ``<metric>_hi`` right after each metric's column.
* :func:`comparisons_table`: per budget, every method against the unpruned model (``none``) and against
  LiteLVLM on the same units: the difference (method minus reference) with its paired interval, its
  p-value and Holm's correction over every comparison of the metric in the table, and the ratio method /
  reference with its interval (against ``none``: the share of the unpruned model's score kept).
* :func:`claims_table`: the paper's "maintains 90% of the original performance" (LiteLVLM's share of the
  unpruned score, per budget) and "outperforms existing methods by over 5%" (LiteLVLM minus the best other
  method at each budget, read as 5 points of the metric on its 0-1 scale: this project's reading of the
  claim), each MET or MISSED by its estimate, with its interval and whether the whole interval clears the
  threshold; "not judged" on random or toy weights, where no claim is tested.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.common import bootstrap
from analysis.common.bootstrap import UnitStat
from litelvlm.methods import BASELINE, TABLE, get_method

#: the method the paper's claims are about, and the reference of the second set of comparisons
LITELVLM = "litelvlm"
#: the correction for multiple comparisons in ``comparisons.csv`` (its ``correction`` column)
CORRECTION = "holm"
#: the paper's claims: (name, what the paper says, threshold)
RETENTION_CLAIM = ("retains_90pct", "maintains 90% of the original performance", 0.90)
MARGIN_CLAIM = ("margin_over_5pct", "outperforms existing methods by over 5% across diverse token budgets", 0.05)
#: methods that are not "existing methods" for the margin: the baseline, LiteLVLM's own variants and this
#: project's ablations of it, random selection (the analysis oracles are left out too: :func:`competitors`)
NOT_COMPETITORS = (BASELINE, "clip_topsim", "random", *(m for m in TABLE if m.startswith(LITELVLM)))

COMPARISON_COLUMNS = ["metric", "budget", "method", "reference", "reference_budget", "value", "reference_value",
                      "difference", "difference_lo", "difference_hi", "p", "p_adjusted", "correction",
                      "family_size", "ratio", "ratio_lo", "ratio_hi", "units", "unit"]
CLAIM_COLUMNS = ["claim", "statement", "metric", "budget", "method", "compared_with", "value", "lo", "hi",
                 "threshold", "verdict", "interval_clears", "note"]

Stats = dict[tuple[str, int], dict[str, UnitStat]]


def with_intervals(summary: pd.DataFrame, stats: Stats, metrics: list[str], n_boot: int, seed: int) -> pd.DataFrame:
    """``summary`` (one row per method and budget) with ``<metric>_lo`` / ``<metric>_hi`` right after each of
    ``metrics`` present in it; the existing columns untouched."""
    out = summary.copy()
    for metric in [m for m in metrics if m in summary.columns]:
        bounds = []
        for method, budget in zip(summary["method"], summary["budget"], strict=True):
            stat = stats.get((method, int(budget)), {}).get(metric)
            bounds.append((np.nan, np.nan) if stat is None else bootstrap.interval(stat, n_boot, seed)[1:])
        at = out.columns.get_loc(metric) + 1
        out.insert(at, f"{metric}_lo", [b[0] for b in bounds])
        out.insert(at + 1, f"{metric}_hi", [b[1] for b in bounds])
    return out


def is_baseline(method: str) -> bool:
    """Whether ``method`` (a table's ``method`` value) is the unpruned baseline (its registry's ``Method.baseline``)."""
    return method in TABLE and get_method(method).baseline


def _baseline(stats: Stats) -> tuple[str, int] | None:
    found = sorted(k for k in stats if is_baseline(k[0]))
    return found[0] if found else None


def comparisons_table(stats: Stats, metrics: list[str], n_boot: int, seed: int, unit: str) -> pd.DataFrame:
    """Every method at every budget against ``none`` and against LiteLVLM at that budget (see the module)."""
    base = _baseline(stats)
    rows = []
    for metric in metrics:
        first = len(rows)
        for method, budget in sorted(k for k in stats if not is_baseline(k[0])):
            refs = ([base] if base else []) + [r for r in [(LITELVLM, budget)] if r in stats and r != (method, budget)]
            for ref in refs:
                a, b = stats[(method, budget)].get(metric), stats[ref].get(metric)
                if a is None or b is None:
                    continue
                got = bootstrap.paired(a, b, n_boot, seed)
                rows.append({"metric": metric, "budget": budget, "method": method, "reference": ref[0],
                             "reference_budget": ref[1], "value": got["a"], "reference_value": got["b"],
                             **{k: got[k] for k in ("difference", "difference_lo", "difference_hi", "p", "ratio",
                                                    "ratio_lo", "ratio_hi", "units")}, "unit": unit})
        family = rows[first:]
        for r, adj in zip(family, bootstrap.holm([r["p"] for r in family])):
            r.update(p_adjusted=adj, correction=CORRECTION, family_size=int(sum(np.isfinite(x["p"]) for x in family)))
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def competitors(methods: list[str]) -> list[str]:
    """The "existing methods" among ``methods``: all but :data:`NOT_COMPETITORS` (LiteLVLM's variants among them)
    and the analysis oracles."""
    return [m for m in methods if m not in NOT_COMPETITORS and not (m in TABLE and get_method(m).oracle)]


def _verdict(value: float, lo: float, threshold: float, judged: bool, strict: bool) -> tuple[str, object]:
    """(verdict, whether the interval's bound is past the threshold too) of one claim's estimate."""
    if not judged or not np.isfinite(value):
        return "not judged", None
    past = (lambda x: x > threshold) if strict else (lambda x: x >= threshold)
    return ("MET" if past(value) else "MISSED"), bool(np.isfinite(lo) and past(lo))


def _why(value: float) -> str:
    return "" if np.isfinite(value) else "no estimate (a score of 0 or an empty denominator)"


def claims_table(stats: Stats, metrics: list[str], n_boot: int, seed: int, weights: str) -> pd.DataFrame:
    """The paper's two claims per metric and budget, judged on real weights only (see the module)."""
    judged = weights == "real"
    note = "" if judged else f"{weights} weights: no claim is tested"
    base = _baseline(stats)
    budgets = sorted({b for _, b in stats if (LITELVLM, b) in stats})
    others = competitors(sorted({m for m, _ in stats}))
    rows = []
    nan = float("nan")
    for metric in metrics:
        name, statement, threshold = RETENTION_CLAIM
        for budget in budgets:
            lite = stats[(LITELVLM, budget)].get(metric)
            ref = stats[base].get(metric) if base else None
            if lite is None or ref is None:
                rows.append({"claim": name, "statement": statement, "metric": metric, "budget": budget,
                             "method": LITELVLM, "compared_with": BASELINE, "value": nan, "lo": nan, "hi": nan,
                             "threshold": threshold, "verdict": "not judged", "note": "no unpruned run"})
                continue
            got = bootstrap.paired(lite, ref, n_boot, seed)
            verdict, clears = _verdict(got["ratio"], got["ratio_lo"], threshold, judged, strict=False)
            rows.append({"claim": name, "statement": statement, "metric": metric, "budget": budget,
                         "method": LITELVLM, "compared_with": BASELINE, "value": got["ratio"],
                         "lo": got["ratio_lo"], "hi": got["ratio_hi"], "threshold": threshold, "verdict": verdict,
                         "interval_clears": clears, "note": note or _why(got["ratio"])})
        name, statement, threshold = MARGIN_CLAIM
        for budget in budgets:
            lite = stats[(LITELVLM, budget)].get(metric)
            rivals = {m: stats[(m, budget)][metric] for m in others if metric in stats.get((m, budget), {})}
            if lite is None or not rivals:
                rows.append({"claim": name, "statement": statement, "metric": metric, "budget": budget,
                             "method": LITELVLM, "compared_with": "", "value": nan, "lo": nan, "hi": nan,
                             "threshold": threshold, "verdict": "not judged",
                             "note": "no existing method run at this budget"})
                continue
            got = bootstrap.margin_over_best(lite, rivals, n_boot, seed)
            verdict, clears = _verdict(got["margin"], got["margin_lo"], threshold, judged, strict=True)
            rows.append({"claim": name, "statement": statement, "metric": metric, "budget": budget,
                         "method": LITELVLM, "compared_with": got["best_other"], "value": got["margin"],
                         "lo": got["margin_lo"], "hi": got["margin_hi"], "threshold": threshold,
                         "verdict": verdict, "interval_clears": clears, "note": note or _why(got["margin"])})
        if not budgets:
            rows += [{"claim": c[0], "statement": c[1], "metric": metric, "method": LITELVLM, "threshold": c[2],
                      "verdict": "not judged", "note": "litelvlm was not run"} for c in (RETENTION_CLAIM, MARGIN_CLAIM)]
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)
