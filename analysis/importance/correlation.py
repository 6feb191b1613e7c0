"""Agreement between two per-token score vectors: Pearson, Spearman, Kendall and top-k Jaccard."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import stats

from analysis.common.options.defaults import DEFAULT_KS


def _as_numpy(x: np.ndarray | torch.Tensor | Sequence[float]) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    return a


def correlations(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> dict[str, float]:
    """Pearson, Spearman and Kendall (tau-b) of two equally long score vectors (scipy.stats).

    A constant vector has no defined correlation: every value is then NaN (never an error).
    """
    x, y = _as_numpy(a), _as_numpy(b)
    if x.shape != y.shape:
        raise ValueError(f"score vectors differ in length: {x.shape[0]} vs {y.shape[0]}")
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0 or not (np.isfinite(x).all() and np.isfinite(y).all()):
        return {"pearson": float("nan"), "spearman": float("nan"), "kendall": float("nan")}
    return {
        "pearson": float(stats.pearsonr(x, y).statistic),
        "spearman": float(stats.spearmanr(x, y).statistic),
        "kendall": float(stats.kendalltau(x, y).statistic),
    }


def top_k(scores: np.ndarray | torch.Tensor, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores; ties broken by the lower index (deterministic)."""
    s = _as_numpy(scores)
    order = np.lexsort((np.arange(s.size), -s))
    return order[:k]


def topk_jaccard(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, k: int) -> float:
    """|A ∩ B| / |A ∪ B| of the two top-``k`` index sets; NaN when ``k`` >= the number of tokens."""
    x, y = _as_numpy(a), _as_numpy(b)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if k >= x.size:
        return float("nan")
    sa, sb = set(top_k(x, k).tolist()), set(top_k(y, k).tolist())
    return len(sa & sb) / len(sa | sb)


def compare(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor,
            ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """All agreement statistics of two score vectors: ``pearson``, ``spearman``, ``kendall``,
    ``jaccard_<k>``."""
    out = correlations(a, b)
    for k in ks:
        out[f"jaccard_{k}"] = topk_jaccard(a, b, k)
    return out
