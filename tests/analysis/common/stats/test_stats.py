"""Statistics shared by the studies, against brute-force and scipy computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analysis.common.stats.stats import (
    area_bins,
    auroc,
    auroc_bruteforce,
    bootstrap_ci,
    length_bins,
    wilcoxon_vs,
)


def pairwise_auroc(scores, labels) -> float:
    """Definition by loops: P(pos > neg) + 0.5 P(pos == neg)."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    total = 0.0
    for p in pos:
        for n in neg:
            total += 1.0 if p > n else 0.5 if p == n else 0.0
    return total / (len(pos) * len(neg))


def test_auroc_with_ties_against_loops():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(5, 40))
        s = rng.integers(0, 4, size=n).astype(float)  # many ties
        y = rng.random(n) < 0.4
        if y.all() or not y.any():
            continue
        want = pairwise_auroc(s, y)
        assert auroc(s, y) == pytest.approx(want, abs=1e-12)
        assert auroc_bruteforce(s, y) == pytest.approx(want, abs=1e-12)


def test_auroc_rows_and_edge_cases():
    y = np.array([1, 0, 1, 0, 0], bool)
    rows = np.array([[5, 1, 4, 2, 3], [1, 5, 2, 4, 3], [1, 1, 1, 1, 1]], float)
    np.testing.assert_allclose(auroc(rows, y), [1.0, 0.0, 0.5])
    # hand-computed: pos {2, 2}, neg {1, 2, 3}: (1 + 0.5 + 0) * 2 / 6
    assert auroc(np.array([2, 1, 2, 2, 3.0]), y) == pytest.approx(0.5)
    assert np.isnan(auroc(np.array([1.0, 2.0]), np.array([True, True])))


def test_bootstrap_resamples_images_not_rows():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(10), 20)
    values = np.repeat(rng.normal(size=10), 20)  # rows within an image identical
    mean, lo, hi = bootstrap_ci(values, groups, n_boot=2000, seed=0)
    assert mean == pytest.approx(values.mean())
    _, rlo, rhi = bootstrap_ci(values, None, n_boot=2000, seed=0)
    # rows resampled as if independent: 200 "units" give an interval ~sqrt(20) times too narrow
    assert (hi - lo) > 3 * (rhi - rlo)
    # the group bootstrap equals a bootstrap of the 10 image means (equal sizes), up to MC error
    _, glo, ghi = bootstrap_ci(values[::20], None, n_boot=2000, seed=0)
    assert lo == pytest.approx(glo, abs=1e-12) and hi == pytest.approx(ghi, abs=1e-12)
    # same seed, same interval; a constant has a degenerate interval
    assert bootstrap_ci(values, groups, 500, seed=3) == bootstrap_ci(values, groups, 500, seed=3)
    assert bootstrap_ci(np.full(30, 0.7), np.arange(30) // 3, 200) == pytest.approx((0.7, 0.7, 0.7))


def test_bootstrap_against_reference_loop():
    rng = np.random.default_rng(2)
    groups = rng.integers(0, 12, 80)
    values = rng.normal(size=80)
    mean, lo, hi = bootstrap_ci(values, groups, n_boot=400, seed=5)
    keys = np.unique(groups)
    draw = np.random.default_rng(5).integers(0, len(keys), size=(400, len(keys)))
    reps = [np.concatenate([values[groups == keys[k]] for k in row]).mean() for row in draw]
    assert (lo, hi) == pytest.approx(tuple(np.quantile(reps, [0.025, 0.975])), abs=1e-12)


def test_wilcoxon_sanity():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(30), 4)
    shifted = 0.5 + 0.1 + rng.normal(scale=0.05, size=120)
    stat, p, n = wilcoxon_vs(shifted, groups, 0.5)
    assert n == 30 and p < 1e-4
    per_image = pd.Series(shifted).groupby(groups).mean().to_numpy()
    ref = sps.wilcoxon(per_image - 0.5)
    assert stat == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    _, p_null, _ = wilcoxon_vs(0.5 + rng.normal(scale=0.05, size=120), groups, 0.5)
    assert p_null > 0.01
    assert np.isnan(wilcoxon_vs(np.full(10, 0.5), None, 0.5)[1])


def test_bins():
    labels = area_bins(np.array([0.0, 0.019, 0.02, 0.5, 1.0])).astype(str)
    assert list(labels) == ["[0,0.02)", "[0,0.02)", "[0.02,0.05)", "[0.4,1)", "[0.4,1)"]
    assert list(length_bins(np.array([1, 2, 3, 7, 8, 40])).astype(str)) == ["1-2", "1-2", "3-4", "5-7", "8+",
                                                                            "8+"]


def test_ci_text_explains_a_missing_interval():
    from analysis.common.stats.stats import bootstrap_ci, ci_text

    mean, lo, hi = bootstrap_ci(np.array([0.6, 0.7]), groups=np.array([1, 1]))  # one image
    assert mean == pytest.approx(0.65) and ci_text(lo, hi) == "[no interval: fewer than 3 images]"
    assert ci_text(lo, hi, n=2) == "[no interval: n = 2 images]"
    assert ci_text(0.5, 0.75, "95% CI ", n=40) == "[95% CI 0.500, 0.750]"
    assert ci_text(0.0, 1.0, n=2) == "[no interval: n = 2 images]"   # a 2-image interval read from old files
