"""Whether a run's rounds of one timing lie too far apart for their median to say much (this project's rule):
a run whose slowest round took :data:`UNSTEADY` times its fastest or more had a stall in some rounds
(``validate``, ``efficiency`` and the GPU check's summary say so). This module imports nothing heavy."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

#: a run is unsteady when its slowest round took this many times its fastest or more
UNSTEADY = 2.0


def unsteady_rounds(kept: object, factor: float = UNSTEADY) -> tuple[float, float, int] | None:
    """(fastest, slowest, rounds) of a ``<time>_rounds`` cell ("196.9 201.1 64.9") when the
    slowest took ``factor`` times the fastest or more; None otherwise (steady, fewer than 2 finite rounds, or
    no cell)."""
    if not isinstance(kept, str):
        return None
    times = [t for t in map(float, kept.split()) if math.isfinite(t)]
    if len(times) < 2 or max(times) < factor * min(times):
        return None
    return min(times), max(times), len(times)


def unsteady_lines(runs: Iterable[Mapping], column: str = "stage_total_ms_rounds",
                   factor: float = UNSTEADY) -> list[str]:
    """One line per run (a table's records with ``method``, ``budget`` and ``column``) whose whole call's
    slowest round took ``factor`` times its fastest or more: a stall in some rounds, so that its medians and
    speed-ups say little."""
    out = []
    for run in runs:
        spread = unsteady_rounds(run.get(column), factor)
        if spread:
            lo, hi, n = spread
            out.append(f"unsteady: {run['method']}@{run['budget']}'s whole call took {lo:.3g}-{hi:.3g} ms "
                       f"over its {n} rounds ({hi / lo:.1f}x), a stall in some of them: its medians "
                       "and speed-ups say little (more --repeats, or a quieter machine)")
    return out


__all__ = ["UNSTEADY", "unsteady_lines", "unsteady_rounds"]
