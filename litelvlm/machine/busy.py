"""Whether the machine was busy while this process timed torch work (imports torch;
:mod:`litelvlm.threads` decides the thread count without it)."""

from __future__ import annotations

import os

import torch


def busy_warning(threads: int | None = None, load: float | None = None) -> str | None:
    """A warning when the machine's 1-minute load average exceeds the threads this process times with (other
    work then shares the cores and time ratios drift); None on a quiet machine or where no load is known."""
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            return None
    if threads is None:
        threads = torch.get_num_threads()
    if load <= threads + 0.5:
        return None
    return (f"the machine was busy while timing (1-minute load {load:.1f} above {threads} thread(s)): other "
            "work shared the cores, so times and their ratios are unreliable; rerun on a quiet machine")


__all__ = ["busy_warning"]
