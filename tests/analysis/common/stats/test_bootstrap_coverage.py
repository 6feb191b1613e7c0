"""Do the accuracy tables' intervals and test keep their promise at small n? Simulated coverage of the
studentized 95% interval (:func:`analysis.common.stats.bootstrap.studentized`) and the false-positive
rate of the paired swap test (:func:`analysis.common.stats.permutation.paired_test`).

The data model (docs/grounding.md, "Intervals and tests"): a unit (image) carries 1-3 rows; a row's union is
lognormal(7, 0.5) pixels and its intersection the union times a Beta(2, 3) share, so cIoU's true value, the
ratio of the expected sums, is 0.4; gIoU-like per-unit means are Beta(0.5, 2) (skewed, true mean 0.2). Under
"no difference" the two methods' rows on a unit are independent draws from the same law given the unit's
union.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.common.stats import bootstrap as B
from analysis.common.stats import permutation as P


def _ciou(rng, n):
    unit = np.repeat(np.arange(n), rng.integers(1, 4, n))
    union = rng.lognormal(7, 0.5, len(unit))
    return unit, union


def coverage(n: int, reps: int, seed: int, kind: str) -> float:
    """The share of ``reps`` simulated data sets of ``n`` units whose studentized 95% interval holds the
    truth."""
    rng = np.random.default_rng(seed)
    hits = 0
    for r in range(reps):
        if kind == "ciou":
            unit, union = _ciou(rng, n)
            stat, truth = B.unit_stat(union * rng.beta(2, 3, len(unit)), unit, union, 1e-10), 0.4
        else:
            stat, truth = B.unit_stat(rng.beta(0.5, 2, n), np.arange(n)), 0.2
        _, lo, hi, _ = B.studentized(stat, 1000, r, bounds=(0.0, 1.0))   # as the tables
        hits += lo <= truth <= hi
    return hits / reps


def false_positives(n: int, reps: int, seed: int) -> float:
    """The share of ``reps`` simulated null comparisons of cIoU on ``n`` units with p < 0.05."""
    rng = np.random.default_rng(seed)
    rejected = 0
    for r in range(reps):
        unit, union = _ciou(rng, n)
        a = B.unit_stat(union * rng.beta(2, 3, len(unit)), unit, union, 1e-10)
        b = B.unit_stat(union * rng.beta(2, 3, len(unit)), unit, union, 1e-10)
        rejected += P.SwapTest(a, b, 1000, r).p() < 0.05   # paired_test's p, without its intervals
    return rejected / reps


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ciou", "mean"])
@pytest.mark.parametrize("n", [8, 20, 41])
def test_the_95pct_interval_covers_93_to_97pct(n, kind):
    assert 0.93 <= coverage(n, 2000, 100 + n, kind) <= 0.97


@pytest.mark.slow
@pytest.mark.parametrize("n", [8, 30])
def test_the_paired_test_rejects_a_true_null_at_most_6pct(n):
    assert false_positives(n, 1000, 200 + n) <= 0.06


def test_coverage_and_false_positives_light_representative():
    """The slow tests' machinery at a few replicates (the bands are wide: 200 sets give a standard error of
    1.5%)."""
    assert 0.89 <= coverage(8, 200, 7, "ciou") <= 0.99
    assert false_positives(8, 100, 9) <= 0.10
