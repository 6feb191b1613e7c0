"""Python's cycle collector run rarer while a ``litelvlm`` command runs (this project's own speed setting; it
changes no number a run computes).

A full pass of the collector walks every object alive, and a command keeps hundreds of thousands (torch,
transformers, a model's modules, pandas): with Python's default thresholds (700, 10, 10) a 4-image
``eval-grounding`` of the tiny GLaMM spent 1.6-1.8 of its 11-12 CPU-seconds in the collector, with
:data:`THRESHOLDS` 0.5 (AMD EPYC, ``avx2`` alone). The same cycles are freed, later. The caller's own
thresholds come back when the command returns (a notebook calling ``litelvlm.cli.main`` keeps its own).

A timed call runs with the collector paused (:func:`paused_collection`, as ``timeit`` times): a full pass
walks every live object (0.37 s in a tiny UniPixel ``validate`` on 2 cores of an AMD EPYC) and would land in
whichever stage allocated last.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

#: the collector's thresholds during a command (and in the test suite's processes): generation 0 collected
#: after 10,000 net allocations instead of 700, the older ones after 20 of the younger's passes instead of 10
THRESHOLDS = (10_000, 20, 20)


@contextlib.contextmanager
def rarer_collection() -> Iterator[None]:
    """Within the block the collector runs with :data:`THRESHOLDS`; the caller's thresholds afterwards."""
    before = gc.get_threshold()
    gc.set_threshold(*THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)


@contextlib.contextmanager
def paused_collection() -> Iterator[None]:
    """Within the block no cycle collection runs; the ones that fell due run after it, at the next
    allocations. A caller that had paused the collector keeps it paused."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


__all__ = ["THRESHOLDS", "paused_collection", "rarer_collection"]
