"""The paired swap test and the intervals that invert it (``analysis.common.stats.permutation``): ties
kept within a relative tolerance, exact p-values against loops over every sign pattern (a mean and cIoU's
ratio of sums), the Monte Carlo path against a loop over the same patterns, and an interval that excludes 0
exactly when p <
0.05."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from analysis.common.stats import bootstrap as B
from analysis.common.stats import permutation as P


def _u(values, den=None, eps=0.0):
    values = np.asarray(values, dtype=float)
    return B.unit_stat(values, np.arange(len(values)), den, eps)


def test_a_tie_that_rounding_would_break_is_kept():
    """One unit of two differs: the difference's magnitude is the same under every pattern, so p = 1 (the old
    exact-float comparison gave 0.235); the bootstrap test gives no p over 2 units (under MIN_UNITS) and, with
    the tolerance, about 0.56 over 3 units of which one differs."""
    got = P.paired_test(_u([.5, .01]), _u([.5, .02]), 2000, 0)
    assert got["p"] == 1.0 and got["test"] == "exact swap test (2^2 patterns)"
    assert np.isnan(B.paired(_u([.5, .01]), _u([.5, .02]), 2000, 0)["p"])
    boot = B.paired(_u([.5, .01, .3]), _u([.5, .02, .3]), 2000, 0)["p"]
    assert boot == pytest.approx(0.56, abs=0.05)
    # the same structure at 8 and 30 units: only one unit differs, so p = 1 whatever the seed
    for n in (8, 30):
        x = np.random.default_rng(n).random(n)
        y = x.copy()
        y[3] += 0.01
        assert P.paired_test(_u(x), _u(y), 500, n)["p"] == 1.0


def loop_p_mean(d: np.ndarray) -> float:
    """The sign-flip test of the mean of ``d`` by a loop over every sign pattern."""
    obs = abs(d.mean())
    hits = [abs((np.array(s) * d).mean()) >= obs - 1e-12 for s in itertools.product((1, -1), repeat=len(d))]
    return float(np.mean(hits))


def loop_p_ratio(ia, ua, ib, ub) -> float:
    """cIoU a minus cIoU b, each unit's (I, U) of a and b swapped on every subset of the units, by a loop."""
    def ciou(i, u):
        return sum(i) / (sum(u) + 1e-10)
    obs = abs(ciou(ia, ua) - ciou(ib, ub))
    hits = []
    for swap in itertools.product((False, True), repeat=len(ia)):
        a = [(ib[k], ub[k]) if s else (ia[k], ua[k]) for k, s in enumerate(swap)]
        b = [(ia[k], ua[k]) if s else (ib[k], ub[k]) for k, s in enumerate(swap)]
        hits.append(abs(ciou(*zip(*a)) - ciou(*zip(*b))) >= obs - 1e-12)
    return float(np.mean(hits))


@pytest.mark.parametrize("n", [1, 3, 7])
def test_exact_p_values_against_loops_over_every_pattern(n):
    rng = np.random.default_rng(n)
    x, y = rng.random(n), rng.random(n) * 0.8
    assert P.paired_test(_u(x), _u(y))["p"] == pytest.approx(loop_p_mean(x - y), abs=1e-12)
    ua, ub = rng.integers(50, 500, n).astype(float), rng.integers(50, 500, n).astype(float)
    ia, ib = np.floor(ua * rng.random(n)), np.floor(ub * rng.random(n) * 0.7)
    got = P.paired_test(_u(ia, ua, 1e-10), _u(ib, ub, 1e-10))
    assert got["p"] == pytest.approx(loop_p_ratio(ia, ua, ib, ub), abs=1e-12)
    assert got["difference"] == pytest.approx(ia.sum() / (ua.sum() + 1e-10) - ib.sum() / (ub.sum() + 1e-10),
                                              rel=1e-12)


def test_the_monte_carlo_test_is_the_loop_over_its_own_patterns():
    rng = np.random.default_rng(3)
    n = 25
    x, y = rng.random(n), rng.random(n) - 0.1
    got = P.paired_test(_u(x), _u(y), 400, 9)
    patterns, exact = P.swap_patterns(n, 400, 9)
    assert not exact and got["test"] == "Monte Carlo swap test (400)"
    d = x - y
    hits = sum(abs(((1 - 2 * s) * d).mean()) >= abs(d.mean()) - 1e-12 for s in patterns)
    assert got["p"] == pytest.approx((1 + hits) / 401, abs=1e-12)
    assert got["p_mc"] == pytest.approx(np.sqrt(got["p"] * (1 - got["p"]) / 400))
    assert got["difference_mc"] > 0 and P.paired_test(_u(x), _u(y), 400, 9) == got   # the seed fixes it


def test_a_shift_moves_every_stratum_ratio_by_exactly_the_shift():
    rng = np.random.default_rng(4)
    units, strata = np.repeat(np.arange(9), 3), np.tile(np.arange(3), 9)
    num, den = rng.random(27), rng.random(27) + 1
    stat = B.unit_stat(num, units, den, strata=strata)
    shifted = B.UnitStat(stat.keys, stat.num - 0.2 * stat.den, stat.den)
    assert shifted.value() == pytest.approx(stat.value() - 0.2, rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_the_interval_excludes_zero_iff_p_is_below_alpha_and_inverts_the_test(seed):
    rng = np.random.default_rng(seed)
    n = [6, 9, 12, 20, 30, 40][seed]
    effect = [0.02, 0.05, 0.03, 0.04, 0.02, 0.01][seed]
    union = rng.integers(100, 1000, n).astype(float)
    a = np.floor(union * rng.uniform(0.3, 0.7, n))
    b = np.floor(a * (1 - effect) * rng.uniform(0.9, 1.1, n))
    sa, sb = _u(a, union, 1e-10), _u(b, union, 1e-10)
    got = P.paired_test(sa, sb, 600, seed)
    assert (got["p"] < 0.05) == (not got["difference_lo"] <= 0 <= got["difference_hi"])
    assert (got["p"] < 0.05) == (not got["ratio_lo"] <= 1 <= got["ratio_hi"])
    assert got["difference_lo"] <= got["difference"] <= got["difference_hi"]
    assert got["ratio_lo"] <= got["ratio"] <= got["ratio_hi"]
    test = P.SwapTest(*B.common([sa, sb]), 600, seed)
    width = got["difference_hi"] - got["difference_lo"]
    for end, out in ((got["difference_lo"], -1), (got["difference_hi"], 1)):
        assert test.p(end) >= 0.05 and test.p(end + out * 1e-3 * width) < 0.05   # the ends are the test's


def test_few_units_give_no_finite_interval_and_one_unit_p_one():
    five = P.paired_test(_u([0.9, 0.8, 0.95, 0.7, 0.85]), _u([0.1, 0.2, 0.1, 0.2, 0.1]))
    # five units: no swap pattern reaches p < 0.05, so no null is rejected: no interval (NaN, never infinite)
    assert five["p"] == pytest.approx(2 / 32)
    ends = ("difference_lo", "difference_hi", "difference_mc", "ratio_lo", "ratio_hi", "ratio_mc")
    assert np.isnan([five[k] for k in ends]).all()
    six = P.paired_test(_u([0.9, 0.8, 0.95, 0.7, 0.85, 0.9]), _u([0.1, 0.2, 0.1, 0.2, 0.1, 0.2]))
    assert six["p"] == pytest.approx(2 / 64) and 0 < six["difference_lo"] < six["difference_hi"] < np.inf
    one = P.paired_test(_u([0.9]), _u([0.1]))
    assert one["p"] == 1.0 and one["units"] == 1


def test_at_every_n_the_intervals_are_finite_or_absent():
    rng = np.random.default_rng(9)
    for n in range(1, 31):
        got = P.paired_test(_u(rng.uniform(0.5, 0.9, n)), _u(rng.uniform(0.1, 0.5, n)), 300, n)
        for k in ("difference", "ratio"):
            ends = np.array([got[f"{k}_lo"], got[f"{k}_hi"]])
            assert np.isnan(ends).all() or np.isfinite(ends).all(), (n, k, ends)
            assert n > 5 or np.isnan(ends).all(), (n, k, ends)
