"""Peak memory of a computation: the one meter lives in :mod:`litelvlm.memory` (re-exported here for
``benchmarks/bench_importance_memory.py``, which imports ``peak_memory`` from this module)."""

from __future__ import annotations

from litelvlm.memory import LiveTensorBytes, peak_memory

__all__ = ["LiveTensorBytes", "peak_memory"]
