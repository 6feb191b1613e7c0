"""The statistics of an accuracy table (``eval-grounding``, ``eval-video``): a 95% interval beside every
figure, paired comparisons of the methods (``comparisons.csv``) and the paper's two claims (``claims.csv``).

Each study gives, per (method, budget) and metric, a :class:`~analysis.common.bootstrap.UnitStat` over its
resampling unit (images or expressions for RefCOCO, videos for the video sets); ``n_boot`` replicates
(bootstrap draws or random swap patterns) are drawn with the bootstrap seed (``--boot-seed``, by default
``--seed``).

* :func:`with_intervals`: ``<metric>_lo`` and ``<metric>_hi`` right after each metric's column, the
  studentized bootstrap interval (:func:`~analysis.common.bootstrap.studentized`), and ``<metric>_mc``, its
  Monte Carlo error.
* :func:`comparisons_table`: per budget, every method against the unpruned model (``none``) and against
  LiteLVLM on the same units: the difference (method minus reference) and the ratio method / reference
  (against ``none``: the share of the unpruned model's score kept), each with the interval that inverts the
  paired swap test whose p-value stands beside them (:mod:`analysis.common.permutation`: the difference's
  interval excludes 0 exactly when ``p < 0.05``), Holm's correction of ``p`` over every comparison of the
  metric in the table, and the Monte Carlo errors (``p_mc``, ``difference_mc``, ``ratio_mc``; 0 where the test
  enumerates every pattern).
* :func:`claims_table`: the paper's "maintains 90% of the original performance" (LiteLVLM's share of the
  unpruned score, per budget, with the ratio's interval of the comparisons) and "outperforms existing methods
  by over 5%" (LiteLVLM minus the best other method at each budget, read as 5 points of the metric on its 0-1
  scale: this project's reading of the claim; its interval is the percentile bootstrap's, the choice of the
  best resampled too), each MET or MISSED by its estimate, with its interval and whether the whole interval
  clears the threshold; "not judged" on random or toy weights, where no claim is tested; a claim on one unit
  says "no interval (one unit)".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.common import bootstrap, permutation
from analysis.common.bootstrap import UnitStat
from litelvlm.methods import BASELINE, TABLE, get_method

#: the method the paper's claims are about, and the reference of the second set of comparisons
LITELVLM = "litelvlm"
#: the values every accuracy figure (cIoU, gIoU, box accuracy, J, F, J&F) can take: an interval stays within
#: them
RANGE = (0.0, 1.0)
#: the correction for multiple comparisons in ``comparisons.csv`` (its ``correction`` column)
CORRECTION = "holm"
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
                 "threshold", "verdict", "interval_clears", "note", "mc"]

Stats = dict[tuple[str, int], dict[str, UnitStat]]


def with_intervals(summary: pd.DataFrame, stats: Stats, metrics: list[str], n_boot: int,
                   seed: int) -> pd.DataFrame:
    """``summary`` (one row per method and budget) with ``<metric>_lo`` / ``<metric>_hi`` (the studentized
    bootstrap interval, within :data:`RANGE`) and ``<metric>_mc`` (its Monte Carlo error) right after each of
    ``metrics`` present in it; the existing columns untouched."""
    out = summary.copy()
    for metric in [m for m in metrics if m in summary.columns]:
        bounds = []
        for method, budget in zip(summary["method"], summary["budget"], strict=True):
            stat = stats.get((method, int(budget)), {}).get(metric)
            bounds.append((np.nan,) * 3 if stat is None else
                          bootstrap.studentized(stat, n_boot, seed, bounds=RANGE)[1:])
        at = out.columns.get_loc(metric) + 1
        for k, suffix in enumerate(("lo", "hi", "mc")):
            out.insert(at + k, f"{metric}_{suffix}", [b[k] for b in bounds])
    return out


def is_baseline(method: str) -> bool:
    """Whether ``method`` (a table's ``method`` value) is the unpruned baseline (its registry's
    ``Method.baseline``)."""
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
            refs = ([base] if base else []) + [r for r in [(LITELVLM, budget)] if r in stats and r
                                               != (method, budget)]
            for ref in refs:
                a, b = stats[(method, budget)].get(metric), stats[ref].get(metric)
                if a is None or b is None:
                    continue
                got = permutation.paired_test(a, b, n_boot, seed)
                rows.append({"metric": metric, "budget": budget, "method": method, "reference": ref[0],
                             "reference_budget": ref[1], "value": got["a"], "reference_value": got["b"],
                             **{k: got[k]
                                for k in ("difference", "difference_lo", "difference_hi", "p", "ratio",
                                                    "ratio_lo", "ratio_hi", "units")}, "unit": unit,
                             **{k: got[k] for k in ("p_mc", "difference_mc", "ratio_mc", "test")}})
        family = rows[first:]
        for r, adj in zip(family, bootstrap.holm([r["p"] for r in family])):
            r.update(p_adjusted=adj, correction=CORRECTION,
                     family_size=int(sum(np.isfinite(x["p"]) for x in family)))
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


#: the note of a claim judged on a single unit, where no interval exists
ONE_UNIT = "no interval (one unit)"


def _why(value: float, units: int) -> str:
    if not np.isfinite(value):
        return "no estimate (a score of 0 or an empty denominator)"
    return ONE_UNIT if units < 2 else ""


def _one_unit(got: dict, lo: str, hi: str) -> dict:
    """``got`` with NaN bounds when it rests on a single unit (its interval says nothing there)."""
    mc = lo.rsplit("_", 1)[0] + "_mc"
    return {**got, lo: float("nan"), hi: float("nan"), mc: float("nan")} if got["units"] < 2 else got


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
                             "method": LITELVLM, "compared_with": BASELINE, "value": nan, "lo": nan,
                             "hi": nan,
                             "threshold": threshold, "verdict": "not judged", "note": "no unpruned run"})
                continue
            got = _one_unit(permutation.paired_test(lite, ref, n_boot, seed), "ratio_lo", "ratio_hi")
            verdict, clears = _verdict(got["ratio"], got["ratio_lo"], threshold, judged, strict=False)
            rows.append({"claim": name, "statement": statement, "metric": metric, "budget": budget,
                         "method": LITELVLM, "compared_with": BASELINE, "value": got["ratio"],
                         "lo": got["ratio_lo"], "hi": got["ratio_hi"], "threshold": threshold,
                         "verdict": verdict,
                         "interval_clears": clears, "note": note or _why(got["ratio"], got["units"]),
                         "mc": got["ratio_mc"]})
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
            got = _one_unit(bootstrap.margin_over_best(lite, rivals, n_boot, seed), "margin_lo", "margin_hi")
            verdict, clears = _verdict(got["margin"], got["margin_lo"], threshold, judged, strict=True)
            rows.append({"claim": name, "statement": statement, "metric": metric, "budget": budget,
                         "method": LITELVLM, "compared_with": got["best_other"], "value": got["margin"],
                         "lo": got["margin_lo"], "hi": got["margin_hi"], "threshold": threshold,
                         "verdict": verdict, "interval_clears": clears,
                         "note": note or _why(got["margin"], got["units"]), "mc": got["margin_mc"]})
        if not budgets:
            rows += [
                {"claim": c[0], "statement": c[1], "metric": metric, "method": LITELVLM, "threshold": c[2],
                      "verdict": "not judged", "note": "litelvlm was not run"}
                     for c in (RETENTION_CLAIM, MARGIN_CLAIM)]
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)
