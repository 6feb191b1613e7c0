"""Wall time (synchronised, warm-ups first, median over repeats) and summed CUDA kernel time."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def wall_time_ms(fn: Callable[[], object], device: str | torch.device = "cpu", *, warmup: int = 2,
                 repeats: int = 5) -> dict[str, float]:
    """Median, min and max wall time (ms) of ``fn`` over ``repeats`` calls after ``warmup`` calls."""
    return interleaved_wall_ms({0: fn}, device, warmup=warmup, repeats=repeats)[0]


def cuda_time_ms(fn: Callable[[], object], device: str | torch.device = "cuda", repeats: int = 3) -> float:
    """Summed CUDA kernel time (ms) of one call of ``fn`` (median of ``repeats`` profiled calls);
    NaN when ``device`` is not a CUDA device."""
    device = torch.device(device)
    if device.type != "cuda":
        return float("nan")
    from torch.profiler import ProfilerActivity, profile

    totals = []
    with torch.no_grad():
        for _ in range(repeats):
            _sync(device)
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                fn()
                _sync(device)
            us = sum(e.self_device_time_total for e in prof.key_averages())
            totals.append(us / 1e3)
    return statistics.median(totals)


def interleaved_wall_ms(fns: dict, device: str | torch.device = "cpu", *, warmup: int = 2,
                        repeats: int = 5) -> dict:
    """Wall time (ms) of every callable in ``fns``, timed round-robin: each round calls each one once, so
    a slow spell of a shared machine hits all of them alike. Returns {key: {median, min, max, repeats, times}}
    (``times``: the timed calls in round order, so that round i of two keys can be paired)."""
    device = torch.device(device)
    times: dict = {k: [] for k in fns}
    with torch.no_grad():
        for i in range(warmup + repeats):
            for key, fn in fns.items():
                _sync(device)
                t0 = time.perf_counter()
                out = fn()
                _sync(device)
                dt = (time.perf_counter() - t0) * 1e3
                del out
                if i >= warmup:
                    times[key].append(dt)
    return {k: {"median": statistics.median(v), "min": min(v), "max": max(v), "repeats": repeats, "times": v}
            for k, v in times.items()}
