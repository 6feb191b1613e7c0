"""Peak memory of the tensors a computation creates, on any device (a dispatch-mode tracker).

:class:`LiveTensorBytes` counts the bytes of every storage produced by an aten op while it
is alive, and records the peak. Weights and inputs that exist before the block are not
counted (nor are views of them), so the peak is the activation memory of the block. Workspace that a fused kernel
allocates internally is invisible to it; on CUDA, :func:`peak_memory` also reports the
allocator's own peak (``torch.cuda.max_memory_allocated``) above the starting level.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode


class LiveTensorBytes(TorchDispatchMode):
    """Within the block, ``.peak`` is the largest total size (bytes) of live storages created in it."""

    def __init__(self) -> None:
        super().__init__()
        self._live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.current = 0
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for key in [k for k, (r, _) in self._live.items() if r.expired()]:
            self.current -= self._live.pop(key)[1]
        inputs = {StorageWeakRef(t.untyped_storage()).cdata for t in pytree.tree_leaves((args, kwargs))
                  if isinstance(t, torch.Tensor) and t.device.type != "meta"}
        for t in pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                st = t.untyped_storage()
                ref = StorageWeakRef(st)
                if ref.cdata not in self._live and ref.cdata not in inputs:  # views of inputs are not new
                    self._live[ref.cdata] = (ref, st.nbytes())
                    self.current += st.nbytes()
        self.peak = max(self.peak, self.current)
        return out


def peak_memory(fn: Callable[[], Any], device: torch.device | str = "cpu") -> dict[str, int]:
    """Run ``fn`` once: ``{"tracked": peak live bytes of tensors it created}`` plus, on CUDA,
    ``"allocator"``: ``max_memory_allocated`` minus the level before the call."""
    device = torch.device(device)
    out: dict[str, int] = {}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        res = fn()
        torch.cuda.synchronize(device)
        out["allocator"] = int(torch.cuda.max_memory_allocated(device) - base)
        del res
    tracker = LiveTensorBytes()
    with tracker:
        res = fn()
    del res
    out["tracked"] = int(tracker.peak)
    return out
