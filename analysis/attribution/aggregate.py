"""Aggregates of per-sentence agreement statistics, with 95% bootstrap CIs over images.

The bootstrap and the mask-area bins are the project's shared ones (``analysis.stats``:
images are resampled, not rows); a local copy with the same semantics is used only where
that module is unavailable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

try:  # the project's shared statistics
    from analysis.stats import AREA_BIN_EDGES, area_bins, bootstrap_ci
except ImportError:  # pragma: no cover - same semantics, kept for a partial checkout
    AREA_BIN_EDGES: tuple[float, ...] = (0.0, 0.02, 0.05, 0.10, 0.20, 0.40, 1.0001)

    def area_bins(area_fraction: np.ndarray, edges: tuple[float, ...] = AREA_BIN_EDGES) -> pd.Categorical:
        """Mask-area-fraction bins (right-open) as an ordered categorical."""
        labels = [f"[{a:g},{min(b, 1.0):g})" for a, b in zip(edges[:-1], edges[1:])]
        return pd.Categorical(pd.cut(np.asarray(area_fraction, float), bins=list(edges), right=False,
                                     labels=labels), ordered=True)

    def bootstrap_ci(values: np.ndarray, groups: np.ndarray | None = None, n_boot: int = 1000,
                     seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
        """(mean, lo, hi): row mean and percentile CI from resampling whole groups (images)."""
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
        idx = np.random.default_rng(seed).integers(0, len(keys), size=(n_boot, len(keys)))
        reps = sums[idx].sum(1) / counts[idx].sum(1)
        a = (1.0 - level) / 2.0
        lo, hi = np.quantile(reps, [a, 1.0 - a])
        return mean, float(lo), float(hi)

__all__ = ["AREA_BIN_EDGES", "area_bins", "bootstrap_ci", "summarize"]


def summarize(df: pd.DataFrame, by: Sequence[str], metrics: Sequence[str], cluster: str = "image_id",
              n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per group of ``by``: ``n_sentences``, ``n_images`` and ``<metric>_mean/_lo/_hi`` per metric."""
    rows = []
    for key, g in df.groupby(list(by), sort=True, dropna=False, observed=True):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        row["n_sentences"] = int(len(g))
        row["n_images"] = int(g[cluster].nunique())
        for m in metrics:
            mean, lo, hi = bootstrap_ci(g[m].to_numpy(), g[cluster].to_numpy(), n_boot=n_boot, seed=seed)
            row[f"{m}_mean"], row[f"{m}_lo"], row[f"{m}_hi"] = mean, lo, hi
        rows.append(row)
    return pd.DataFrame(rows)
