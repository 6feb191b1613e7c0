"""Intervals that keep their promise at the sizes users have (issue #67, item 9): a hit rate's Clopper-Pearson
interval (by hand, and its coverage by seeded simulation at 8 and 20 units, rows independent or clustered in
images), where the studentized bootstrap collapses; and the heavy-tails label's rule."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.common.stats import accuracy_stats as acc
from analysis.common.stats import bootstrap as B
from analysis.common.stats import proportion as PR


def test_clopper_pearson_by_hand():
    # x = 0: the upper end solves (1 - p)^n = 0.025; x = n: the lower end solves p^n = 0.025
    assert PR.clopper_pearson(0, 8) == pytest.approx((0.0, 1 - 0.025 ** (1 / 8)))
    assert PR.clopper_pearson(8, 8) == pytest.approx((0.025 ** (1 / 8), 1.0))
    lo, hi = PR.clopper_pearson(4, 8)   # a symmetric case: the ends mirror each other
    assert lo == pytest.approx(1 - hi) and lo == pytest.approx(0.15701, abs=1e-5)
    assert all(np.isnan(PR.clopper_pearson(0, 0)))


def test_one_row_per_unit_is_the_plain_interval_and_clustered_rows_count_less():
    hits = np.array([1.0, 0, 1, 1, 0, 1, 1, 0])
    stat = B.unit_stat(hits, np.arange(8))
    assert PR.effective_size(stat) == 8
    assert PR.hit_rate_interval(stat) == pytest.approx((5 / 8, *PR.clopper_pearson(5, 8), 0.0))
    # four images, each with three expressions that all hit or all miss: the rows count as no more than
    # their images
    same = B.unit_stat(np.repeat([1.0, 0, 1, 1], 3), np.repeat(np.arange(4), 3))
    assert PR.effective_size(same) == 4
    # all hits: nothing to measure the clustering from, each image counts once
    assert PR.effective_size(B.unit_stat(np.ones(12), np.repeat(np.arange(4), 3))) == 4
    # one image of three expressions: it counts once
    assert PR.effective_size(B.unit_stat(np.array([1.0, 0, 1]), np.zeros(3))) == 1


def _coverage(n: int, rate: float, rng, clustered: bool, runs: int) -> float:
    covered = 0
    for _ in range(runs):
        if clustered:   # 1-3 expressions an image, the image's own rate ~ Beta with mean ``rate``
            sizes = rng.integers(1, 4, size=n)
            units = np.repeat(np.arange(n), sizes)
            own = rng.beta(4 * rate, 4 * (1 - rate), size=n)[units]
        else:
            units, own = np.arange(n), np.full(n, rate)
        stat = B.unit_stat((rng.random(len(units)) < own).astype(float), units)
        lo, hi, _ = acc.figure_interval("unipixel_box_acc", stat, 200, 0)
        covered += lo <= rate <= hi
    return covered / runs


@pytest.mark.parametrize("n", [8, 20])
def test_a_hit_rate_interval_covers_at_least_93_percent(n):
    rng = np.random.default_rng(n)
    for rate in (0.1, 0.5, 0.85):
        for clustered in (False, True):
            assert _coverage(n, rate, rng, clustered, 200) >= 0.93, (n, rate, clustered)


def test_the_bootstrap_it_replaces_collapsed_on_hit_rates():
    # 8 expressions at a true rate of 0.85: often 8 hits in 8, where every replicate is 1 and the studentized
    # interval is the single point 1
    stat = B.unit_stat(np.ones(8), np.arange(8))
    _, lo, hi, _ = B.studentized(stat, 200, 0, bounds=(0.0, 1.0))
    assert lo == hi == 1.0
    lo, hi, _ = acc.figure_interval("box_acc", stat, 200, 0)
    assert lo == pytest.approx(0.025 ** (1 / 8)) and hi == 1.0 and lo < 0.85
    assert acc.is_hit_rate("unipixel_box_acc") and not acc.is_hit_rate("unipixel_giou")


def test_heavy_tails_label_by_the_kurtosis_rule():
    rng = np.random.default_rng(0)
    units = np.arange(20)

    def share(draw) -> float:
        return np.mean([PR.tail_label(B.unit_stat(draw(), units)) == PR.HEAVY for _ in range(200)])

    assert share(lambda: rng.normal(size=20)) < 0.05   # 1.5% expected
    assert share(lambda: rng.lognormal(0, 1.5, size=20)) > 0.6   # 73% expected
    assert PR.tail_label(B.unit_stat(np.array([0.0, 0, 0, 100]), np.arange(4))) == PR.HEAVY
    assert PR.tail_label(B.unit_stat(np.array([0.0, 0, 100]), np.arange(3))) == ""   # under 4 units
    assert PR.tail_label(B.unit_stat(np.full(6, 0.3), np.arange(6))) == ""           # no spread
