"""The project's one bootstrap: percentile intervals, paired differences and ratios, a paired p-value and
Holm's correction, all resampling UNITS (images, expressions or videos), never rows.

Details: docs/statistics.md (``analysis.common.stats.bootstrap``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: two distances count as equal when they differ by less than this share of the scale (floating-point rounding
#: must not break a tie: 0.5 - 0.5 against 0.01 - 0.02)
RTOL = 1e-9
#: replicates are computed in chunks of at most this many drawn units (memory; the sums are the same)
_CHUNK = 1 << 22
#: a replicate's standard error below this share of the value's counts as none (floating-point noise of a
#: draw that repeats one unit): its bootstrap-t is infinite
SE_FLOOR = 1e-8


@dataclass(frozen=True)
class UnitStat:
    """``mean over strata s of sum_u num[s, u] / (sum_u den[s, u] + eps)`` over the units ``keys``
    (sorted)."""

    keys: np.ndarray
    num: np.ndarray
    den: np.ndarray
    eps: float = 0.0

    @property
    def n_units(self) -> int:
        """How many units the statistic is built from."""
        return len(self.keys)

    def value(self) -> float:
        """The statistic on the units as they are."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.mean(self._ratio(self.num.sum(-1), self.den.sum(-1))))

    def _ratio(self, num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return num / (den + self.eps) if self.eps else num / den

    def replicates(self, idx: np.ndarray) -> np.ndarray:
        """(B,) the statistic on each row of drawn unit positions ``idx`` (B, U)."""
        out = np.empty(len(idx))
        step = max(1, _CHUNK // max(1, idx.shape[1] * len(self.num)))
        with np.errstate(divide="ignore", invalid="ignore"):
            for i in range(0, len(idx), step):
                part = idx[i:i + step]
                out[i:i + step] = np.mean(self._ratio(self.num[:, part].sum(-1), self.den[:, part].sum(-1)),
                                          axis=0)
        return out

    def on(self, keys: np.ndarray) -> UnitStat:
        """The same statistic on the units ``keys`` (a subset of :attr:`keys`, sorted)."""
        if len(keys) == len(self.keys) and np.array_equal(keys, self.keys):
            return self
        pos = np.searchsorted(self.keys, keys)
        return UnitStat(np.asarray(keys), self.num[:, pos], self.den[:, pos], self.eps)


def unit_stat(values: np.ndarray, units: np.ndarray, den: np.ndarray | None = None, eps: float = 0.0,
              strata: np.ndarray | None = None) -> UnitStat:
    """A :class:`UnitStat` from rows: ``values`` summed per unit (and stratum) over ``den`` (default: the row
    count); rows whose value is NaN are left out."""
    v = np.asarray(values, dtype=np.float64)
    d = np.ones_like(v) if den is None else np.asarray(den, dtype=np.float64)
    s = np.zeros(len(v), dtype=np.int64) if strata is None else np.asarray(strata)
    ok = ~np.isnan(v)
    keys, inv = np.unique(np.asarray(units)[ok], return_inverse=True)
    levels, sinv = np.unique(s[ok], return_inverse=True)
    flat = sinv * len(keys) + inv
    size = len(levels) * len(keys)
    num = np.bincount(flat, weights=v[ok], minlength=size).reshape(len(levels), len(keys))
    dd = np.bincount(flat, weights=d[ok], minlength=size).reshape(len(levels), len(keys))
    return UnitStat(keys, num, dd, eps)


def draw(n_units: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_units) unit positions drawn with replacement; the seed fixes them."""
    return np.random.default_rng(seed).integers(0, n_units, size=(n_boot, n_units))


def percentile(reps: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of the replicates at ``level`` (non-finite replicates left out; NaNs when none
    is)."""
    reps = np.asarray(reps, dtype=np.float64)
    if not np.isfinite(reps).all():
        reps = reps[np.isfinite(reps)]
    if not len(reps):
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(reps, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


#: the fewest resampled units any interval is computed over (and shown over): two units give three distinct
#: resamples, whose percentile "interval" is the two units' own values (for a hit rate, [0, 1])
MIN_UNITS = 3


def _can_resample(n_units: int, n_boot: int) -> bool:
    return n_units >= MIN_UNITS and n_boot >= 1


def interval(stat: UnitStat, n_boot: int = 1000, seed: int = 0,
             level: float = 0.95) -> tuple[float, float, float]:
    """(value, low, high): the statistic and its percentile bootstrap interval (NaN bounds under
    :data:`MIN_UNITS` units)."""
    value = stat.value()
    if not _can_resample(stat.n_units, n_boot):
        return value, float("nan"), float("nan")
    return (value, *percentile(stat.replicates(draw(stat.n_units, n_boot, seed)), level))


def _counts(idx: np.ndarray, n_units: int) -> np.ndarray:
    """(B, n_units) how often each unit is drawn in each row of ``idx``."""
    rows = np.arange(len(idx))[:, None] * n_units
    return np.bincount((rows + idx).ravel(), minlength=len(idx) * n_units).reshape(len(idx), n_units).astype(
        float)


def linearised(stat: UnitStat, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """((B,) values, (B,) standard errors) of the statistic on units weighted by ``counts`` (B, U): the
    delta-method (infinitesimal jackknife) error of a mean of ratios of sums, ``sqrt(U / (U - 1) * sum_u c_u
    z_u^2)`` with ``z_u = mean_s (num[s, u] - R_s den[s, u]) / D_s`` (for a mean, the usual ``s /
    sqrt(n)``)."""
    n_units = stat.n_units
    with np.errstate(divide="ignore", invalid="ignore"):
        num, den = counts @ stat.num.T, counts @ stat.den.T + stat.eps   # (B, S)
        ratio = num / den
        z = np.zeros(counts.shape)
        for s in range(len(stat.num)):
            z += (stat.num[s][None, :] - ratio[:, s:s + 1] * stat.den[s][None, :]) / den[:, s:s + 1]
        z /= len(stat.num)
        se = np.sqrt(n_units / max(n_units - 1, 1) * np.sum(counts * z * z, axis=1))
    return ratio.mean(1), se


def studentized(stat: UnitStat, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
                bounds: tuple[float, float] = (-math.inf, math.inf)) -> tuple[float, float, float, float]:
    """(value, low, high, Monte Carlo error): the studentized (bootstrap-t) interval, ``value - t*_(1-a/2)
    se`` to ``value - t*_(a/2) se`` with ``t* = (value* - value) / se*`` and :func:`linearised` errors, over
    the same draw as :func:`interval`; the error is half the spread of the end points between the order
    statistics one binomial standard error either side of each quantile (the larger end's). The ends are kept
    within ``bounds``, the values the statistic can take (an accuracy in [0, 1]), which few units can
    overshoot. No interval (NaN bounds and error) under 2 units, nor where too many replicates draw one unit
    only (under 4 units): a replicate whose error vanishes (below :data:`SE_FLOOR` of the value's) has an
    infinite t, and an end whose quantile is infinite has no finite interval to report; an interval clipped at
    both ends spans every value the statistic takes, and is none either."""
    value = stat.value()
    nan = float("nan")
    if not _can_resample(stat.n_units, n_boot) or not np.isfinite(value):
        return value, nan, nan, nan
    _, se = linearised(stat, np.ones((1, stat.n_units)))
    if not se[0] > 0:
        return value, value, value, 0.0
    idx = draw(stat.n_units, n_boot, seed)
    t = np.empty(n_boot)
    step = max(1, _CHUNK // max(1, stat.n_units * len(stat.num)))
    for i in range(0, n_boot, step):
        v, s = linearised(stat, _counts(idx[i:i + step], stat.n_units))
        with np.errstate(divide="ignore", invalid="ignore"):
            t[i:i + step] = np.where(s > SE_FLOOR * se[0], (v - value) / s, np.sign(v - value) * np.inf)
    floor, ceiling = bounds
    t = np.sort(t[~np.isnan(t)])
    if not len(t):
        return value, nan, nan, nan
    alpha = (1.0 - level) / 2.0
    ends, errors = [], []
    for q in (1.0 - alpha, alpha):
        k = q * (len(t) - 1)
        w = math.sqrt(len(t) * q * (1 - q))
        end = value - float(np.quantile(t, q, method="higher" if q > 0.5 else "lower")) * se[0]
        if not math.isfinite(end):
            return value, nan, nan, nan
        ends.append(min(max(end, floor), ceiling))
        with np.errstate(invalid="ignore"):
            spread = t[min(len(t) - 1, math.ceil(k + w))] - t[max(0, math.floor(k - w))]
        errors.append(abs(float(spread)) * se[0] / 2 if np.isfinite(spread) else nan)
    if (ends[0], ends[1]) == (floor, ceiling):   # clipped at both ends: every value the statistic takes
        return value, nan, nan, nan
    return value, ends[0], ends[1], float(max(errors))


def common(stats: Sequence[UnitStat]) -> list[UnitStat]:
    """The statistics restricted to the units they all have (a paired comparison needs the same units)."""
    keys = stats[0].keys
    for s in stats[1:]:
        keys = np.intersect1d(keys, s.keys)
    return [s.on(keys) for s in stats]


def shifted_p(reps: np.ndarray, estimate: float) -> float:
    """Two-sided bootstrap p-value of "no difference": replicates centred on the null,
    ``(1 + #{|d* - d| >= |d|}) / (B + 1)``, ties within :data:`RTOL` of the scale (NaN without finite
    replicates)."""
    reps = np.asarray(reps, dtype=np.float64)
    reps = reps[np.isfinite(reps)]
    if not len(reps) or not np.isfinite(estimate):
        return float("nan")
    tol = RTOL * max(abs(estimate), float(np.max(np.abs(reps))))
    return float((1 + np.count_nonzero(np.abs(reps - estimate) >= abs(estimate) - tol)) / (len(reps) + 1))


def paired(a: UnitStat, b: UnitStat, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """``a`` against ``b`` on their common units, one draw for both: their values there (``a``, ``b``), the
    difference ``a - b`` with its interval and p-value (:func:`shifted_p`), the ratio ``a / b`` with its
    interval, and the number of units."""
    a, b = common([a, b])
    va, vb = a.value(), b.value()
    with np.errstate(divide="ignore", invalid="ignore"):
        out = {"a": va, "b": vb, "difference": va - vb, "ratio": va / vb if vb else float("nan"),
               "units": a.n_units}
    nan = float("nan")
    if not _can_resample(a.n_units, n_boot):
        return {**out, "difference_lo": nan, "difference_hi": nan, "p": nan, "ratio_lo": nan, "ratio_hi": nan}
    idx = draw(a.n_units, n_boot, seed)
    ra, rb = a.replicates(idx), b.replicates(idx)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, hi = percentile(ra - rb, level)
        rlo, rhi = percentile(ra / rb, level)
    return {**out, "difference_lo": lo, "difference_hi": hi, "p": shifted_p(ra - rb, out["difference"]),
            "ratio_lo": rlo, "ratio_hi": rhi}


def percentile_mc(reps: np.ndarray, level: float = 0.95) -> float:
    """The Monte Carlo error of :func:`percentile`'s ends: half the spread between the order statistics one
    binomial standard error either side of each quantile, the larger end's (NaN without finite replicates)."""
    reps = np.sort(np.asarray(reps, dtype=np.float64)[np.isfinite(reps)])
    if not len(reps):
        return float("nan")
    alpha, n = (1.0 - level) / 2.0, len(reps)
    spreads = []
    for q in (alpha, 1.0 - alpha):
        k, w = q * (n - 1), math.sqrt(n * q * (1 - q))
        spreads.append(float(reps[min(n - 1, math.ceil(k + w))] - reps[max(0, math.floor(k - w))]) / 2)
    return max(spreads)


def holm(p: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error), NaNs left out of the family and kept as NaN."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full(len(p), np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adjusted
    return out
