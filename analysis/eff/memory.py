"""Activation memory: bytes of tensors allocated during a forward pass, at their peak.

On CUDA this is ``max_memory_allocated`` minus what was allocated before the call (weights and
inputs). Everywhere else (CPU, and ``meta``, where the full 7B model costs nothing) a
TorchDispatchMode tracks every storage an operator creates until Python frees it, so the peak of
the live sum is the same quantity, without the allocator's rounding and workspaces.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class LiveTensorBytes(TorchDispatchMode):
    """Within the block, ``peak`` is the most bytes that tensors created inside it held at once;
    ``live`` what they hold now. Storages that existed before (weights, inputs) and views of them
    are not counted."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._sizes: dict[int, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = {t.untyped_storage()._cdata for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor)}
        out = func(*args, **kwargs)
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            st = t.untyped_storage()
            key = st._cdata
            if key in inputs or key in self._sizes:
                continue
            nbytes = int(st.nbytes())
            self._sizes[key] = nbytes
            self.live += nbytes
            self.peak = max(self.peak, self.live)
            weakref.finalize(st, self._free, key)
        return out

    def _free(self, key: int) -> None:
        self.live -= self._sizes.pop(key, 0)


def peak_activation_bytes(fn: Callable[[], object], device: str | torch.device = "cpu") -> tuple[int, int]:
    """(peak bytes above the starting allocation, bytes still held by the result) for one call of ``fn``.

    CUDA: the caching allocator's statistics; other devices: :class:`LiveTensorBytes`.
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        with torch.no_grad():
            out = fn()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device) - base
        kept = torch.cuda.memory_allocated(device) - base
        del out
        return int(peak), int(kept)
    tracker = LiveTensorBytes()
    with torch.no_grad(), tracker:
        out = fn()
    kept = tracker.live
    del out
    return tracker.peak, kept
