"""The shared bootstrap (``analysis.common.stats.bootstrap``) against scipy's ``bootstrap``, textbook
loops and known answers: intervals, paired differences, cIoU's ratio of sums per resample, the strata of
DAVIS's J, the paired p-value and Holm's correction; and the CLIP studies' ``bootstrap_ci`` unchanged by going
through it."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from analysis.common.stats import bootstrap as B
from analysis.common.stats.stats import bootstrap_ci


def previous_bootstrap_ci(values, groups=None, n_boot=1000, seed=0, level=0.95):
    """``analysis.common.stats.stats.bootstrap_ci`` as it was before the shared helper (transcribed)."""
    v = np.asarray(values, dtype=np.float64)
    g = np.arange(len(v)) if groups is None else np.asarray(groups)
    ok = ~np.isnan(v)
    if not ok.any():
        return float("nan"), float("nan"), float("nan")
    keys, inv = np.unique(g[ok], return_inverse=True)
    sums = np.bincount(inv, weights=v[ok], minlength=len(keys))
    counts = np.bincount(inv, minlength=len(keys)).astype(float)
    mean = float(sums.sum() / counts.sum())
    if len(keys) < 2 or n_boot < 1:
        return mean, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(keys), size=(n_boot, len(keys)))
    reps = sums[idx].sum(1) / counts[idx].sum(1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return mean, float(lo), float(hi)


@pytest.mark.parametrize("case", range(12))
def test_bootstrap_ci_is_bit_identical_to_the_previous_code(case):
    rng = np.random.default_rng(case)
    n = int(rng.integers(1, 300))
    v = rng.normal(size=n)
    v[rng.random(n) < 0.1] = np.nan
    groups = None if case % 3 == 0 else rng.integers(0, max(1, n // 4), size=n)
    n_boot = [0, 1, 200, 1000][case % 4]
    got = bootstrap_ci(v, groups, n_boot=n_boot, seed=case)
    want = previous_bootstrap_ci(v, groups, n_boot=n_boot, seed=case)
    assert np.array_equal(np.array(got), np.array(want), equal_nan=True)


def test_interval_of_a_mean_equals_scipy_percentile_bootstrap():
    x = np.random.default_rng(1).gamma(2.0, size=57)
    value, lo, hi = B.interval(B.unit_stat(x, np.arange(len(x))), n_boot=2000, seed=7)
    res = sps.bootstrap((x,), np.mean, n_resamples=2000, method="percentile", confidence_level=0.95,
                        rng=np.random.default_rng(7), vectorized=True)
    assert value == pytest.approx(x.mean(), rel=1e-12)
    assert (lo, hi) == pytest.approx((res.confidence_interval.low, res.confidence_interval.high), rel=1e-12)


def test_paired_difference_equals_scipy_paired_bootstrap():
    rng = np.random.default_rng(2)
    n = 80
    inter_a, inter_b = rng.integers(0, 100, n).astype(float), rng.integers(0, 100, n).astype(float)
    union_a, union_b = inter_a + rng.integers(1, 80, n), inter_b + rng.integers(1, 80, n)
    units = np.arange(n)
    a = B.unit_stat(inter_a, units, union_a, eps=1e-10)
    b = B.unit_stat(inter_b, units, union_b, eps=1e-10)
    got = B.paired(a, b, n_boot=1500, seed=3)

    def diff(ia, ua, ib, ub, axis=-1):
        return ia.sum(axis) / (ua.sum(axis) + 1e-10) - ib.sum(axis) / (ub.sum(axis) + 1e-10)

    res = sps.bootstrap((inter_a, union_a, inter_b, union_b), diff, paired=True, n_resamples=1500,
                        method="percentile", rng=np.random.default_rng(3), vectorized=True)
    assert got["difference"] == pytest.approx(diff(inter_a, union_a, inter_b, union_b), rel=1e-12)
    assert (got["difference_lo"], got["difference_hi"]) == pytest.approx(
        (res.confidence_interval.low, res.confidence_interval.high), rel=1e-10)
    assert got["units"] == n


def slow_ciou_replicates(rows_by_image: dict, n_boot: int, seed: int) -> np.ndarray:
    """The textbook loop: draw images, then add up the intersections and unions of all their rows."""
    images = sorted(rows_by_image)
    idx = np.random.default_rng(seed).integers(0, len(images), size=(n_boot, len(images)))
    out = []
    for b in range(n_boot):
        inter = union = 0.0
        for i in idx[b]:
            for r_inter, r_union in rows_by_image[images[i]]:
                inter += r_inter
                union += r_union
        out.append(inter / (union + 1e-10))
    return np.array(out)


def test_ciou_is_a_ratio_of_sums_in_every_resample_as_a_slow_loop():
    rng = np.random.default_rng(4)
    image = rng.integers(100, 130, size=90)              # 90 rows on ~30 images, several rows each
    union = rng.integers(1, 5000, size=90).astype(float)
    inter = np.floor(union * rng.random(90))
    stat = B.unit_stat(inter, image, union, eps=1e-10)
    by_image: dict = {}
    for i, a, u in zip(image, inter, union):
        by_image.setdefault(int(i), []).append((a, u))
    want = slow_ciou_replicates(by_image, 300, 5)
    got = stat.replicates(B.draw(stat.n_units, 300, 5))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # and not the mean of per-row or per-image IoUs
    assert stat.value() == pytest.approx(inter.sum() / (union.sum() + 1e-10), rel=1e-12)
    assert stat.value() != pytest.approx(np.mean(inter / union), rel=1e-3)
    value, lo, hi = B.interval(stat, 300, 5)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(want, [0.025, 0.975])), rel=1e-12)


def test_strata_mean_of_ratios_as_davis_j_by_a_slow_loop():
    """DAVIS's J: per annotator set the mean over the objects of the drawn videos, then the mean over the
    sets."""
    rng = np.random.default_rng(6)
    rows = [(v, s, float(rng.random())) for v in range(12) for s in range(4)
            for _ in range(int(rng.integers(1, 4)))]
    video, stratum, j = (np.array(c) for c in zip(*rows))
    stat = B.unit_stat(j, video, strata=stratum)
    idx = B.draw(stat.n_units, 200, 8)
    want = []
    for b in range(200):
        sets = []
        for s in range(4):
            picked = [jj for i in idx[b] for (vv, ss, jj) in rows if vv == i and ss == s]
            sets.append(np.mean(picked))
        want.append(np.mean(sets))
    np.testing.assert_allclose(stat.replicates(idx), want, rtol=1e-12)
    assert stat.value() == pytest.approx(np.mean([j[stratum == s].mean() for s in range(4)]), rel=1e-12)


def slow_shifted_p(x, y, n_boot, seed):
    """Efron & Tibshirani's bootstrap test of a zero mean difference, by a loop: centre the replicates on the
    null and count those at least as far from it as the observed difference."""
    d = x.mean() - y.mean()
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    count = 0
    for b in range(n_boot):
        dstar = x[idx[b]].mean() - y[idx[b]].mean()
        count += abs(dstar - d) >= abs(d)
    return (1 + count) / (n_boot + 1)


def test_paired_p_value_as_the_textbook_loop_and_known_answers():
    rng = np.random.default_rng(9)
    x = rng.normal(0.5, 1, 300)
    y = x - rng.normal(0.12, 1, 300)
    units = np.arange(300)
    got = B.paired(B.unit_stat(x, units), B.unit_stat(y, units), n_boot=2000, seed=10)
    assert got["p"] == pytest.approx(slow_shifted_p(x, y, 2000, 10), abs=1e-12)
    t = sps.ttest_rel(x, y).pvalue   # the large-sample answer the bootstrap test approximates
    assert got["p"] == pytest.approx(t, abs=0.02)
    same = B.paired(B.unit_stat(x, units), B.unit_stat(x, units), n_boot=500, seed=0)
    assert same["difference"] == 0 and same["p"] == 1.0 and same["ratio"] == 1.0
    far = B.paired(B.unit_stat(x + 10, units), B.unit_stat(x, units), n_boot=500, seed=0)
    assert far["p"] == pytest.approx(1 / 501) and far["difference_lo"] == pytest.approx(10)


def test_the_ratio_interval_is_the_percentile_of_replicate_ratios():
    rng = np.random.default_rng(11)
    a, b = rng.random(40) + 0.5, rng.random(40) + 1.0
    units = np.arange(40)
    got = B.paired(B.unit_stat(a, units), B.unit_stat(b, units), n_boot=400, seed=12)
    idx = B.draw(40, 400, 12)
    reps = a[idx].mean(1) / b[idx].mean(1)
    assert (got["ratio_lo"], got["ratio_hi"]) == pytest.approx(tuple(np.quantile(reps, [0.025, 0.975])),
                                                               rel=1e-12)
    assert got["ratio"] == pytest.approx(a.mean() / b.mean(), rel=1e-12)


def test_paired_uses_only_the_common_units():
    a = B.unit_stat(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1, 2, 3, 4]))
    b = B.unit_stat(np.array([1.0, 1.0, 1.0]), np.array([2, 3, 5]))
    got = B.paired(a, b, n_boot=50, seed=0)
    assert got["units"] == 2 and got["difference"] == pytest.approx(1.5)


def test_holm_by_hand_and_nan_kept():
    # sorted 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 -> max(0.04, 0.06) = 0.06
    np.testing.assert_allclose(B.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    got = B.holm([0.2, np.nan, 0.9])
    assert np.isnan(got[1]) and got[0] == pytest.approx(0.4) and got[2] == pytest.approx(0.9)
    np.testing.assert_allclose(B.holm([0.6, 0.7]), [1.0, 1.0])


def test_no_interval_under_two_units_or_no_replicates():
    one = B.unit_stat(np.array([0.3, 0.5]), np.array([7, 7]))
    assert B.interval(one, 100, 0)[0] == pytest.approx(0.4) and np.isnan(B.interval(one, 100, 0)[1])
    two = B.unit_stat(np.array([0.3, 0.5]), np.array([1, 2]))
    assert np.isnan(B.interval(two, 0, 0)[2]) and np.isnan(B.paired(two, two, 0, 0)["p"])


def test_the_seed_fixes_every_number():
    rng = np.random.default_rng(15)
    stat = B.unit_stat(rng.random(50), rng.integers(0, 20, 50))
    assert B.interval(stat, 300, 21) == B.interval(stat, 300, 21)
    assert B.interval(stat, 300, 21) != B.interval(stat, 300, 22)


def slow_studentized(x: np.ndarray, n_boot: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """The bootstrap-t interval of a mean by a loop: t* = (mean* - mean) / (s* / sqrt(n)) per drawn sample."""
    n = len(x)
    se = x.std(ddof=1) / np.sqrt(n)
    ts = []
    for row in np.random.default_rng(seed).integers(0, n, size=(n_boot, n)):
        xs = x[row]
        ts.append((xs.mean() - x.mean()) / (xs.std(ddof=1) / np.sqrt(n)))
    a = (1 - level) / 2
    return (x.mean() - np.quantile(ts, 1 - a, method="higher") * se,
            x.mean() - np.quantile(ts, a, method="lower") * se)


def test_studentized_interval_of_a_mean_as_the_textbook_loop():
    x = np.random.default_rng(16).beta(2, 5, 15)
    value, lo, hi, mc = B.studentized(B.unit_stat(x, np.arange(15)), 800, 17)
    assert value == pytest.approx(x.mean()) and (lo, hi) == pytest.approx(slow_studentized(x, 800, 17),
                                                                          rel=1e-10)
    assert 0 < mc < (hi - lo) / 10   # the Monte Carlo error is reported, and small beside the interval


def test_linearised_error_of_a_mean_a_ratio_and_strata():
    rng = np.random.default_rng(18)
    x = rng.random(12)
    _, se = B.linearised(B.unit_stat(x, np.arange(12)), np.ones((1, 12)))
    assert se[0] == pytest.approx(x.std(ddof=1) / np.sqrt(12), rel=1e-12)
    i, u = rng.random(12), rng.random(12) + 1
    r = i.sum() / u.sum()   # delta method for a ratio of sums: residuals i - r u over the total of u
    _, se = B.linearised(B.unit_stat(i, np.arange(12), u), np.ones((1, 12)))
    assert se[0] == pytest.approx(np.sqrt(12 / 11 * np.sum(((i - r * u) / u.sum()) ** 2)), rel=1e-12)
    # two strata: the mean of the strata's ratios; each unit's contribution the mean of its residuals
    units, strata = np.repeat(np.arange(6), 2), np.tile([0, 1], 6)
    v = rng.random(12)
    _, se = B.linearised(B.unit_stat(v, units, strata=strata), np.ones((1, 6)))
    z = (v[strata == 0] - v[strata == 0].mean()) / 6 / 2 + (v[strata == 1] - v[strata == 1].mean()) / 6 / 2
    assert se[0] == pytest.approx(np.sqrt(6 / 5 * np.sum(z ** 2)), rel=1e-12)


def test_studentized_edges_constant_one_unit_and_few_units():
    assert B.studentized(B.unit_stat(np.full(9, 0.4), np.arange(9)), 200, 0) == pytest.approx(
        (0.4, 0.4, 0.4, 0.0))
    assert np.isnan(B.studentized(B.unit_stat(np.array([0.3, 0.5]), np.array([7, 7])), 200, 0)[1])
    _, lo, hi, mc = B.studentized(B.unit_stat(np.array([0.3, 0.5]), np.arange(2)), 200, 0)
    assert np.isnan([lo, hi, mc]).all()   # half the draws repeat one unit: no interval from 2 units


@pytest.mark.parametrize("bounds", [(-np.inf, np.inf), (0.0, 1.0)], ids=["unbounded", "accuracy"])
def test_at_every_n_the_interval_is_real_or_absent(bounds):
    """From 1 to 30 units: a finite interval around the value, or none (NaN ends and error); never the bounds
    as a placeholder, never an infinity. Under 4 units too many draws repeat one unit for a bootstrap-t."""
    rng = np.random.default_rng(5)
    for n in range(1, 31):
        x, units = rng.uniform(0.2, 0.9, 3 * n), np.repeat(np.arange(n), 3)
        value, lo, hi, mc = B.studentized(B.unit_stat(x, units), 500, n, bounds=bounds)
        if n < 4:
            assert np.isnan([lo, hi, mc]).all(), (n, lo, hi)
        elif not np.isnan(lo):
            assert np.isfinite([lo, hi]).all() and lo <= value <= hi and (lo, hi) != bounds, (n, lo, hi)
        assert n < 6 or np.isfinite([lo, hi]).all(), n


def test_studentized_ends_stay_within_the_values_the_statistic_takes():
    # four units near 0: the bootstrap-t's lower end overshoots 0, and is kept at 0
    x = np.array([0.156, 0.101, 0.126, 0.054])
    _, lo, hi, _ = B.studentized(B.unit_stat(x, np.arange(4)), 500, 1)
    assert lo < 0
    _, lo, hi, _ = B.studentized(B.unit_stat(x, np.arange(4)), 500, 1, bounds=(0.0, 1.0))
    assert 0.0 == lo < x.mean() < hi < 1.0
    # one far out: the upper end overshoots 1 as well; an interval over every value there is is none
    x = np.array([0.02, 0.9, 0.05, 0.03])
    assert np.isnan(B.studentized(B.unit_stat(x, np.arange(4)), 500, 1, bounds=(0.0, 1.0))[1:]).all()


def test_percentile_monte_carlo_error_by_hand():
    # 1001 evenly spaced replicates: the 2.5% quantile sits at order statistic 25, one binomial standard error
    # (sqrt(1001 * 0.025 * 0.975) = 4.94) either side are statistics 20 and 30: half their spread is 5
    assert B.percentile_mc(np.random.default_rng(0).permutation(np.arange(1001.0))) == pytest.approx(5.0)
