"""Paired comparisons by a permutation test of exchangeability within units, and the intervals that invert it,
so that a comparison's interval and its p-value can never disagree.

Details: docs/statistics.md (``analysis.common.stats.permutation``).
"""

from __future__ import annotations

import math

import numpy as np

from analysis.common.stats.bootstrap import RTOL, UnitStat, common

#: up to this many units every swap pattern is enumerated (2^16 = 65,536): the p-value is exact
EXACT_MAX_UNITS = 16
#: bisection stops when the bracket is this share of the statistics' scale wide
_XTOL = 1e-7


def min_units(level: float = 0.95) -> int:
    """The fewest units with which the swap test can reject at ``1 - level`` (its smallest p, ``2 / 2^n``, at
    most ``1 - level``): below it no interval inverting the test is finite (6 at 95%)."""
    return math.ceil(math.log2(2 / (1 - level)) - 1e-12)


def swap_patterns(n_units: int, n_perm: int, seed: int) -> tuple[np.ndarray, bool]:
    """((P, n_units) 0/1 float patterns, exact): every pattern for ``n_units <= EXACT_MAX_UNITS``, else
    ``n_perm`` random ones (``numpy.random.default_rng(seed)``)."""
    if n_units <= EXACT_MAX_UNITS:
        codes = np.arange(1 << n_units, dtype=np.int64)
        return ((codes[:, None] >> np.arange(n_units)) & 1).astype(np.float64), True
    return np.random.default_rng(seed).integers(0, 2, size=(n_perm, n_units)).astype(np.float64), False


def _strata_mean(x: np.ndarray) -> np.ndarray:
    """The mean over the last axis (the strata); of one stratum, its value plus 0.0, the number ``np.mean``
    returns (it sums from 0: -0.0 becomes 0.0), without the reduction's cost."""
    return x[..., 0] + 0.0 if x.shape[-1] == 1 else np.mean(x, -1)


class SwapTest:
    """The permutation test of ``a`` against ``b`` (the same units, sorted) under shifts and scales."""

    def __init__(self, a: UnitStat, b: UnitStat, n_perm: int = 1000, seed: int = 0):
        self.a, self.b = a, b
        self.patterns, self.exact = swap_patterns(a.n_units, n_perm, seed)
        p = self.patterns
        # per pattern and stratum, the swapped units' sums of each numerator and denominator; and the totals
        self.sw = {k: p @ getattr(s, f).T for k, (s, f) in
                   {"na": (a, "num"), "da": (a, "den"), "nb": (b, "num"), "db": (b, "den")}.items()}
        self.tot = {"na": a.num.sum(-1), "da": a.den.sum(-1), "nb": b.num.sum(-1), "db": b.den.sum(-1)}
        t, sw = self.tot, self.sw
        # the parts of the swapped tables that no shift or scale moves, computed once
        self.fixed = {"da": t["da"] - sw["da"] + sw["db"], "db": sw["da"] + t["db"] - sw["db"],
                      "nb": t["nb"] - sw["nb"]}
        self.scale = max(abs(a.value()), abs(b.value()), 1e-300) if np.isfinite(a.value()
                                                                                + b.value()) else 1.0

    @property
    def size(self) -> int:
        """How many swap patterns the test uses."""
        return len(self.patterns)

    def _stat(self, na, da, nb, db) -> np.ndarray:
        eps = self.a.eps
        with np.errstate(divide="ignore", invalid="ignore"):
            return _strata_mean(na / (da + eps) if eps else na / da) - _strata_mean(nb / (db + eps) if eps
                                                                                    else nb / db)

    def p(self, shift: float = 0.0, scale: float = 1.0) -> float:
        """p-value of "``a`` minus ``shift`` and ``b`` times ``scale`` are exchangeable within units"
        (two-sided; NaN where the statistic is undefined)."""
        t, s = self.tot, self.sw
        na_t, na_s = t["na"] - shift * t["da"], s["na"] - shift * s["da"]
        observed = float(self._stat(na_t, t["da"], scale * t["nb"], t["db"]))
        if not np.isfinite(observed):
            return float("nan")
        f = self.fixed
        # 1.0 * x is x: at scale 1 the same numbers without two passes over the patterns
        nb_s, nb_f = (s["nb"], f["nb"]) if scale == 1.0 else (scale * s["nb"], scale * f["nb"])
        reps = self._stat(na_t - na_s + nb_s, f["da"], na_s + nb_f, f["db"])
        tol = RTOL * max(self.scale, abs(shift), abs(scale) * self.scale, abs(observed))
        hits = int(np.count_nonzero(np.abs(reps) >= abs(observed) - tol))
        return hits / self.size if self.exact else (1 + hits) / (self.size + 1)

    def bound(self, estimate: float, null: float, side: int, alpha: float, shift: bool) -> float:
        """The end of the accepted set on ``side`` (-1 low, +1 high) of ``estimate``: bisection from a bracket
        that holds ``null`` whenever ``null`` lies on that side, so that the interval excludes ``null`` iff
        its test rejects. ``shift``: invert in the shift (difference) else in the scale (ratio)."""
        def accepts(x: float) -> bool:
            p = self.p(x, 1.0) if shift else self.p(0.0, x)
            return bool(p >= alpha)

        if not np.isfinite(estimate):
            return float("nan")
        inner, outer = estimate, None
        if (null - estimate) * side > 0:
            if accepts(null):
                inner = null
            else:
                outer = null
        width = max(abs(estimate), abs(null), self.scale if shift else 1.0)
        step = width
        while outer is None:
            if step > 1e12 * width:
                return side * math.inf
            if not accepts(inner + side * step):
                outer = inner + side * step
            else:
                inner, step = inner + side * step, 2 * step
        xtol = _XTOL * width
        while abs(outer - inner) > xtol:
            mid = (inner + outer) / 2
            inner, outer = (mid, outer) if accepts(mid) else (inner, mid)
        return inner


def _interval(test: SwapTest, estimate: float, null: float, alpha: float,
              shift: bool) -> tuple[float, float, float]:
    """(low, high, Monte Carlo error of the ends): the ends at ``alpha``; the error is half the move of each
    end when the p-value curve moves by one Monte Carlo standard error (0 for an exact test), the larger of
    the two. No interval (NaN, NaN, NaN) where an end is unbounded: too few units for the test to reject any
    null at ``alpha`` (5 units or fewer at 0.05)."""
    if test.exact and 2 / test.size >= alpha:   # its smallest p (2 / 2^n) never rejects: no finite end
        return float("nan"), float("nan"), float("nan")
    lo, hi = (test.bound(estimate, null, s, alpha, shift) for s in (-1, 1))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return float("nan"), float("nan"), float("nan")
    if test.exact:
        return lo, hi, 0.0
    se = math.sqrt(alpha * (1 - alpha) / test.size)
    moves = [
        abs(test.bound(estimate, null, s, alpha + se, shift)
            - test.bound(estimate, null, s, max(alpha - se, 0.0),
                                                                                shift)) / 2 for s in (-1, 1)]
    return lo, hi, float(max(moves))


def paired_test(a: UnitStat, b: UnitStat, n_perm: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """``a`` against ``b`` on their common units: their values (``a``, ``b``), the difference ``a - b`` and
    the ratio ``a / b``, each with the interval inverting the swap test, its Monte Carlo error (``*_mc``), the
    p-value, its Monte Carlo standard error (``p_mc``, 0 when exact), the test's name and the number of
    units."""
    a, b = common([a, b])
    va, vb = a.value(), b.value()
    nan = float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {"a": va, "b": vb, "difference": va - vb, "ratio": va / vb if vb else nan, "units": a.n_units}
    if a.n_units < 1:
        return {**out, "difference_lo": nan, "difference_hi": nan, "p": nan, "ratio_lo": nan, "ratio_hi": nan,
                "p_mc": nan, "difference_mc": nan, "ratio_mc": nan, "test": ""}
    test = SwapTest(a, b, n_perm, seed)
    alpha = 1.0 - level
    p = test.p()
    lo, hi, mc = _interval(test, out["difference"], 0.0, alpha, shift=True)
    rlo, rhi, rmc = _interval(test, out["ratio"], 1.0, alpha, shift=False)
    p_mc = 0.0 if test.exact or not np.isfinite(p) else math.sqrt(p * (1 - p) / test.size)
    name = (f"exact swap test (2^{a.n_units} patterns)" if test.exact
            else f"Monte Carlo swap test ({test.size})")
    return {**out, "difference_lo": lo, "difference_hi": hi, "p": p, "ratio_lo": rlo, "ratio_hi": rhi,
            "p_mc": p_mc, "difference_mc": mc, "ratio_mc": rmc, "test": name}
