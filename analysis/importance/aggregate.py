"""Aggregates of per-sentence agreement statistics, with 95% bootstrap CIs over images.

The bootstrap and the mask-area bins are the project's shared ones (``analysis.common.stats.stats``:
images are resampled, not rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from analysis.common.stats.stats import AREA_BIN_EDGES, area_bins, bootstrap_ci

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
