"""Intervals that exist or say why not, at every n from 1 to 30 units, for every kind of interval a study
prints: the percentile bootstrap (reversal, sink, importance, demo: ``stats.bootstrap_ci`` and importance's
``summarize``), the studentized bootstrap and Clopper-Pearson of the accuracy tables (grounding, video:
``figure_interval``), and the intervals inverting the paired swap test (``comparisons.csv``, the claims).
Each is a real interval holding its estimate or NaN at both ends, NaN under
:data:`~analysis.common.stats.bootstrap.MIN_UNITS` units, never an infinity; the screen and the tables then
say "no interval (n = k)" and "—", and the figures draw nothing (``test_stat_plots_few_units.py``)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.common.presentation.screen import estimate
from analysis.common.stats import accuracy_stats as acc
from analysis.common.stats import permutation
from analysis.common.stats.bootstrap import MIN_UNITS, unit_stat
from analysis.common.stats.stats import bootstrap_ci
from analysis.importance.aggregate import summarize
from analysis.tables.accuracy import _interval

UNITS = range(1, 31)
KINDS = ("continuous", "hit", "constant")


def _values(kind: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(values, units) of ``n`` units of 1 to 3 rows each."""
    rng = np.random.default_rng(seed)
    units = np.repeat(np.arange(n), rng.integers(1, 4, size=n))
    size = len(units)
    if kind == "continuous":
        return np.clip(rng.normal(0.4, 0.2, size), 0, 1), units
    if kind == "hit":
        return (rng.random(size) < 0.6).astype(float), units
    return np.full(size, 0.3), units


def _holds(value: float, lo: float, hi: float, n: int, what: str) -> None:
    assert not (math.isinf(lo) or math.isinf(hi)), (what, n, lo, hi)
    if n < MIN_UNITS:
        assert math.isnan(lo) and math.isnan(hi), (what, n, lo, hi)
    assert math.isnan(lo) == math.isnan(hi), (what, n, lo, hi)
    if not math.isnan(lo):
        assert lo - 1e-9 <= value <= hi + 1e-9, (what, n, value, lo, hi)
        # on screen and in a table: the interval, else why there is none
    said = estimate(value, lo, hi, n, unit="images")
    assert ("[" in said) == (not math.isnan(lo) and n >= MIN_UNITS), said
    assert ("no interval" in said) == (math.isnan(lo) or n < MIN_UNITS), said
    assert (_interval(lo, hi, n) == "—") == (math.isnan(lo) or n < MIN_UNITS)


@pytest.mark.parametrize("kind", KINDS)
def test_the_percentile_bootstrap_of_reversal_sink_importance_and_demo(kind):
    for n in UNITS:
        values, units = _values(kind, n, n)
        value, lo, hi = bootstrap_ci(values, units, n_boot=200, seed=1)
        _holds(value, lo, hi, n, f"bootstrap_ci {kind}")


@pytest.mark.parametrize("kind", KINDS)
def test_the_accuracy_tables_intervals(kind):
    """cIoU (a ratio of sums, studentized) and, for hit data, a hit rate (Clopper-Pearson)."""
    for n in UNITS:
        values, units = _values(kind, n, 100 + n)
        union = np.full(len(values), 1000.0)
        stat = unit_stat(values * union, units, union)
        lo, hi, _ = acc.figure_interval("ciou", stat, 200, 2)
        _holds(stat.value(), lo, hi, n, f"studentized {kind}")
        if kind == "hit":
            hits = unit_stat(values, units)
            lo, hi, _ = acc.figure_interval("box_acc", hits, 200, 2)
            _holds(hits.value(), lo, hi, n, "clopper-pearson")


@pytest.mark.parametrize("kind", KINDS)
def test_the_swap_tests_intervals(kind):
    for n in UNITS:
        values, units = _values(kind, n, 200 + n)
        a, b = unit_stat(values, units), unit_stat(np.clip(values * 0.9, 0, 1), units)
        got = permutation.paired_test(a, b, 200, 3)
        _holds(got["difference"], got["difference_lo"], got["difference_hi"], n, f"difference {kind}")
        if math.isfinite(got["ratio"]):
            _holds(got["ratio"], got["ratio_lo"], got["ratio_hi"], n, f"ratio {kind}")


def test_importance_summary_at_every_n():
    for n in UNITS:
        values, units = _values("continuous", n, 300 + n)
        rows = pd.DataFrame({"layer": 0, "spearman": values * 2 - 1, "image_id": units})
        got = summarize(rows, ["layer"], ["spearman"], n_boot=200, seed=4).iloc[0]
        assert got["n_images"] == n
        _holds(got["spearman_mean"], got["spearman_lo"], got["spearman_hi"], n, "importance")
