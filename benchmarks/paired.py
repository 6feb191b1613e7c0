"""Paired, interleaved timing for the benchmarks: A B A B ..., a ratio per pair, median and spread.

Timing A and B in alternation makes a change of machine load hit both alike, and the ratio of
each pair is the unit of measure: the median says how large the effect is, the spread (min-max
over pairs) how far to trust it. A target that the median misses is reported as missed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def wall(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def paired_ratios(slow: Callable[[], object], fast: Callable[[], object], repeats: int = 5,
                  warmup: int = 1) -> list[float]:
    """``time(slow) / time(fast)`` for ``repeats`` interleaved pairs (after ``warmup`` calls of each)."""
    for _ in range(warmup):
        slow()
        fast()
    out = []
    for i in range(repeats):
        if i % 2:  # alternate which goes first as well
            b, a = wall(fast), wall(slow)
        else:
            a, b = wall(slow), wall(fast)
        out.append(a / b)
    return out


def report(name: str, ratios: list[float], target: float | None = None, higher_is_better: bool = True) -> str:
    """One line: median ratio, [min, max] over pairs, n, and whether the target is met."""
    med = statistics.median(ratios)
    line = f"{name}: median {med:.3f} [{min(ratios):.3f}, {max(ratios):.3f}] over {len(ratios)} paired runs"
    if target is not None:
        met = med >= target if higher_is_better else med <= target
        line += f"; target {'>=' if higher_is_better else '<='} {target:g}: {'met' if met else 'MISSED'}"
    if min(ratios) <= 1.0 <= max(ratios):
        line += " (the spread includes 1: no effect distinguishable from noise)"
    return line
