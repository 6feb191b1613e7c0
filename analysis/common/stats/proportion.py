"""Intervals for a hit rate (a mean of 0/1 rows, e.g. UniPixel's box accuracy) and the label of a metric with
heavy tails: the two places where the bootstrap of :mod:`analysis.common.stats.bootstrap` breaks at the
sizes users have. The heavy-tail rule is this project's own.

Details: docs/statistics.md (``analysis.common.stats.proportion``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from analysis.common.stats.bootstrap import MIN_UNITS, UnitStat

#: the excess kurtosis of the units' contributions above which a metric's tails are labelled heavy
HEAVY_KURTOSIS = 3.0
#: the fewest units the kurtosis is computed from
MIN_TAIL_UNITS = 4
#: the label of a metric with heavy tails
HEAVY = "heavy"


def clopper_pearson(hits: float, n: float, level: float = 0.95) -> tuple[float, float]:
    """(low, high): the Clopper-Pearson interval of ``hits`` successes in ``n`` trials (both may be
    effective, non-integer counts); NaNs for ``n <= 0``."""
    if not n > 0:
        return float("nan"), float("nan")
    alpha = 1.0 - level
    lo = 0.0 if hits <= 0 else float(sps.beta.ppf(alpha / 2, hits, n - hits + 1))
    hi = 1.0 if hits >= n else float(sps.beta.ppf(1 - alpha / 2, hits + 1, n - hits))
    return lo, hi


def influence(stat: UnitStat) -> np.ndarray:
    """(U,) each unit's linearised contribution ``mean_s (num[s, u] - R_s den[s, u]) / D_s`` to the figure."""
    with np.errstate(divide="ignore", invalid="ignore"):
        den = stat.den.sum(-1) + stat.eps
        ratio = stat.num.sum(-1) / den
        return np.mean((stat.num - ratio[:, None] * stat.den) / den[:, None], axis=0)


def effective_size(stat: UnitStat, level: float = 0.95) -> float:
    """Korn & Graubard's effective number of rows of a hit rate over clustered units (see the module): the
    rows themselves where every unit holds one."""
    rows, units = float(stat.den.sum()), stat.n_units
    if np.allclose(stat.den, 1.0):
        return rows
    rate = stat.value()
    if units < 2 or not 0.0 < rate < 1.0:
        return float(units)   # no spread to measure the clustering from: count each unit once
    clustered = float(np.sum(influence(stat) ** 2))
    deff = max(1.0, clustered / (rate * (1 - rate) / rows))
    z, t = sps.norm.ppf(0.5 + level / 2), sps.t.ppf(0.5 + level / 2, units - 1)
    return float(min(rows, max(units, rows / deff * (z / t) ** 2)))


def hit_rate_interval(stat: UnitStat, level: float = 0.95) -> tuple[float, float, float, float]:
    """(value, low, high, Monte Carlo error 0): a hit rate (one stratum of 0/1 rows over their count) and its
    Clopper-Pearson interval over the effective rows (NaN bounds without rows, and under
    :data:`~analysis.common.stats.bootstrap.MIN_UNITS` units, as every interval)."""
    value = stat.value()
    if not math.isfinite(value) or stat.n_units < MIN_UNITS:
        return value, float("nan"), float("nan"), float("nan")
    n = effective_size(stat, level)
    lo, hi = clopper_pearson(value * n, n, level)
    return value, lo, hi, 0.0


def tail_label(stat: UnitStat) -> str:
    """``heavy`` where the units' contributions have heavy tails (the module's rule), else ``""`` (also under
    :data:`MIN_TAIL_UNITS` units or without spread)."""
    z = influence(stat)
    z = z[np.isfinite(z)]
    if len(z) < MIN_TAIL_UNITS or not np.ptp(z) > 1e-12 * max(1.0, abs(stat.value())):
        return ""
    kurt = float(sps.kurtosis(z, fisher=True, bias=False))
    return HEAVY if kurt > HEAVY_KURTOSIS else ""
