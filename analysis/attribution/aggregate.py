"""Aggregates of per-sentence agreement statistics, with 95% bootstrap CIs over images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: mask area as a fraction of the image: bin edges and labels
AREA_BINS: tuple[float, ...] = (0.0, 0.02, 0.10, 1.0)
AREA_LABELS: tuple[str, ...] = ("small", "medium", "large")


def area_bin(fraction: float | np.ndarray | pd.Series) -> np.ndarray:
    """Bin mask-area fractions into ``small`` (< 2% of the image), ``medium`` (< 10%) and ``large``."""
    f = np.asarray(fraction, dtype=np.float64).reshape(-1)
    idx = np.clip(np.searchsorted(AREA_BINS, f, side="right") - 1, 0, len(AREA_LABELS) - 1)
    return np.asarray(AREA_LABELS, dtype=object)[idx]


def bootstrap_ci(values: Sequence[float] | np.ndarray, clusters: Sequence | np.ndarray, n_boot: int = 1000,
                 seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi): the sentence mean and its percentile CI from resampling whole clusters (images).

    NaN values are ignored; with no finite value the result is all NaN.
    """
    v = np.asarray(values, dtype=np.float64)
    c = np.asarray(clusters)
    ok = np.isfinite(v)
    v, c = v[ok], c[ok]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    _, inv = np.unique(c, return_inverse=True)
    sums = np.bincount(inv, weights=v)
    counts = np.bincount(inv).astype(np.float64)
    mean = float(sums.sum() / counts.sum())
    if sums.size < 2:
        return mean, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, sums.size, size=(n_boot, sums.size))
    boots = sums[idx].sum(1) / counts[idx].sum(1)
    a = (1 - level) / 2
    lo, hi = np.quantile(boots, [a, 1 - a])
    return mean, float(lo), float(hi)


def summarize(df: pd.DataFrame, by: Sequence[str], metrics: Sequence[str], cluster: str = "image_id",
              n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per group of ``by`` with ``<metric>_mean/_lo/_hi``, ``n_sentences`` and ``n_images``."""
    rows = []
    for key, g in df.groupby(list(by), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        row["n_sentences"] = int(len(g))
        row["n_images"] = int(g[cluster].nunique())
        for m in metrics:
            mean, lo, hi = bootstrap_ci(g[m].to_numpy(), g[cluster].to_numpy(), n_boot=n_boot, seed=seed)
            row[f"{m}_mean"], row[f"{m}_lo"], row[f"{m}_hi"] = mean, lo, hi
        rows.append(row)
    return pd.DataFrame(rows)
