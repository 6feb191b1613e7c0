"""Shared statistics for the studies: AUROC with ties, bootstrap CIs over images, Wilcoxon, mask-area bins.

Conventions used throughout the project:

* :func:`auroc` is the Mann-Whitney probability ``P(score_pos > score_neg) + 0.5 P(=)``;
  ties count one half, so a constant score gives exactly 0.5.
* :func:`bootstrap_ci` resamples IMAGES (groups) with replacement, not rows, because the
  sentences and layers of one image are not independent; the seed fixes the draw.
* :func:`wilcoxon_vs` is :func:`scipy.stats.wilcoxon` on per-image means against a
  reference value (e.g. AUROC 0.5).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.common.stats import bootstrap
from analysis.common.stats.bootstrap import MIN_UNITS

#: default mask-area bins (fraction of the image area), right-open; labels e.g. "[0.00,0.02)"
AREA_BIN_EDGES: tuple[float, ...] = (0.0, 0.02, 0.05, 0.10, 0.20, 0.40, 1.0001)

#: sentence-length bins in words
LENGTH_BIN_EDGES: tuple[int, ...] = (1, 3, 5, 8, 10_000)


def auroc(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """AUROC of ``scores`` for the positive ``labels``, ties counted one half.

    ``scores`` may be (N,) or (R, N) (one AUROC per row, all rows sharing ``labels``).
    Returns NaN where a row has no positive or no negative.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    one = s.ndim == 1
    s = np.atleast_2d(s)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        out = np.full(s.shape[0], np.nan)
    else:
        ranks = sps.rankdata(s, axis=1)  # average ranks: ties get the mean rank
        u = ranks[:, y].sum(1) - n_pos * (n_pos + 1) / 2.0
        out = u / (n_pos * n_neg)
    return out[0] if one else out


def auroc_bruteforce(scores: np.ndarray, labels: np.ndarray) -> float:
    """The O(P*N) definition of :func:`auroc` (for tests and small checks)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    pos, neg = s[y][:, None], s[~y][None, :]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def group_means(values: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(per-group mean, per-group count) over the non-NaN values, in sorted group order."""
    v = np.asarray(values, dtype=np.float64)
    g = np.asarray(groups)
    ok = ~np.isnan(v)
    keys, inv = np.unique(g[ok], return_inverse=True)
    sums = np.bincount(inv, weights=v[ok], minlength=len(keys))
    counts = np.bincount(inv, minlength=len(keys)).astype(float)
    return sums / np.maximum(counts, 1), counts


def ci_text(low: float, high: float, prefix: str = "", n: int | None = None) -> str:
    """``[low, high]`` for the terminal, or why there is no interval: NaN bounds, or ``n`` images under
    :data:`~analysis.common.stats.bootstrap.MIN_UNITS` (:func:`bootstrap_ci` gives NaN bounds there)."""
    if n is not None and n < MIN_UNITS:
        return f"[no interval: n = {int(n)} image{'s' if n != 1 else ''}]"
    if np.isnan(low) or np.isnan(high):
        return f"[no interval: fewer than {MIN_UNITS} images]"
    return f"[{prefix}{low:.3f}, {high:.3f}]"


def bootstrap_ci(values: np.ndarray, groups: np.ndarray | None = None, n_boot: int = 1000,
                 seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the row mean and a percentile bootstrap CI, resampling ``groups`` (images).

    Each replicate draws as many groups as there are, with replacement, and takes the mean
    of all their rows (groups weighted by their row count, as the point estimate). Without
    ``groups`` every row is its own group. NaN values are ignored; all-NaN gives NaNs.
    The shared helper :mod:`analysis.common.stats.bootstrap` does the resampling.
    """
    v = np.asarray(values, dtype=np.float64)
    g = np.arange(len(v)) if groups is None else np.asarray(groups)
    if np.isnan(v).all():
        return float("nan"), float("nan"), float("nan")
    return bootstrap.interval(bootstrap.unit_stat(v, g), n_boot, seed, level)


def wilcoxon_vs(values: np.ndarray, groups: np.ndarray | None = None, reference: float = 0.5,
                alternative: str = "two-sided") -> tuple[float, float, int]:
    """(statistic, p-value, n): Wilcoxon signed-rank test of per-group means against ``reference``.

    With ``groups`` the values are first averaged per group (image), so the test sees
    independent units. Fewer than 2 non-zero differences give NaNs.
    """
    v = np.asarray(values, dtype=np.float64)
    if groups is not None:
        v, _ = group_means(v, groups)
    v = v[~np.isnan(v)]
    d = v - reference
    if np.count_nonzero(d) < 2:
        return float("nan"), float("nan"), int(len(d))
    nz = d[d != 0]
    # exact null distribution for small samples without ties; the normal approximation
    # otherwise (scipy's "auto" falls back to a slow permutation test on small tied samples)
    method = "exact" if len(nz) <= 50 and len(np.unique(np.abs(nz))) == len(nz) else "approx"
    res = sps.wilcoxon(d, alternative=alternative, zero_method="wilcox", method=method)
    return float(res.statistic), float(res.pvalue), int(len(d))


def wilcoxon_paired(x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None,
                    alternative: str = "two-sided") -> tuple[float, float, int]:
    """(statistic, p-value, n): Wilcoxon signed-rank test of paired ``x - y`` (per-group means of it)."""
    return wilcoxon_vs(np.asarray(x, float) - np.asarray(y, float), groups, 0.0, alternative)


def _bin_labels(edges) -> list[str]:
    return [f"[{a:g},{min(b, 1.0) if isinstance(b, float) else b:g})" for a, b in zip(edges[:-1], edges[1:])]


def area_bins(area_fraction: np.ndarray, edges: tuple[float, ...] = AREA_BIN_EDGES) -> pd.Categorical:
    """Mask-area-fraction bins (right-open) as an ordered categorical, e.g. ``[0.05,0.1)``."""
    return pd.Categorical(pd.cut(np.asarray(area_fraction, float), bins=list(edges), right=False,
                                 labels=_bin_labels(edges)), ordered=True)


def length_bins(n_words: np.ndarray, edges: tuple[int, ...] = LENGTH_BIN_EDGES) -> pd.Categorical:
    """Sentence-length bins in words (right-open), e.g. ``1-2``, ``3-4``, ``5-7``, ``8+``."""
    labels = [f"{a}-{b - 1}" if b < 10_000 else f"{a}+" for a, b in zip(edges[:-1], edges[1:])]
    return pd.Categorical(pd.cut(np.asarray(n_words, float), bins=list(edges), right=False, labels=labels),
                          ordered=True)

