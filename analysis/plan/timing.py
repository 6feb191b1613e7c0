"""``litelvlm plan``'s calibration arithmetic: the median of repeated timings and an estimate that grows with
the budget (this project's choices, to keep one noisy timing on a shared machine from ordering the budgets
wrongly). Imports nothing heavy."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence


def per_image(samples: Sequence[Sequence[float]]) -> float:
    """Seconds per image of one (method, budget): the median of its repeats on each timed image, averaged over
    the images (images differ in their expressions; repeats differ by the machine's noise)."""
    return statistics.fmean(statistics.median(repeats) for repeats in samples)


def increasing(values: Sequence[float]) -> list[float]:
    """The closest non-decreasing sequence to ``values`` in least squares (pool-adjacent-violators): a
    pruned run at a larger budget never estimated faster than at a smaller one."""
    blocks: list[list[float]] = []   # [mean, weight]
    for v in values:
        blocks.append([float(v), 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m2, w2), (m1, w1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2])
    return [m for m, w in blocks for _ in range(int(w))]


def monotonic_in_budget(seconds: Mapping[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    """``seconds`` by (method, budget) made non-decreasing in the budget within each method
    (:func:`increasing`); the unpruned baseline (budget ``all``) is kept as measured."""
    out = dict(seconds)
    for method in dict.fromkeys(m for m, _ in seconds):
        keys = sorted((k for k in seconds if k[0] == method and k[1].isdigit()), key=lambda k: int(k[1]))
        out.update(zip(keys, increasing([seconds[k] for k in keys])))
    return out


__all__ = ["increasing", "monotonic_in_budget", "per_image"]
