"""Peak memory of the tensors a computation creates, on any device (CPU, CUDA, and ``meta``).

:class:`LiveTensorBytes` is a dispatch mode that counts the bytes of every storage an aten op
creates, from its creation until Python frees it, and records the peak of that live sum.
Storages that existed before the block (weights, inputs) and views of them are not counted, so
the peak is the activation memory of the block, on every device: on ``meta`` (where a full-size
model costs nothing) the sizes are what the tensors would take. Workspace that a fused kernel
allocates internally is invisible to it; on CUDA the caching allocator's own peak
(``torch.cuda.max_memory_allocated`` above the starting level) is the other figure.

* :func:`peak_activation_bytes`: one figure per device (allocator on CUDA, tracker elsewhere) and
  the bytes the result still holds, under ``torch.no_grad`` (the efficiency study);
* :func:`peak_memory`: both figures, gradients allowed (the attribution benchmarks);
* :func:`storage_bytes`: the bytes a model's weights take (parameters, buffers, and the tensors inside
  quantized weights: bitsandbytes' scales and quantization states, torchao's tensor subclasses).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class LiveTensorBytes(TorchDispatchMode):
    """Within the block, ``peak`` is the most bytes that storages created inside it held at once;
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
            if key in inputs or key in self._sizes:  # in place, a view of an input, or already counted
                continue
            nbytes = int(st.nbytes())
            self._sizes[key] = nbytes
            self.live += nbytes
            self.peak = max(self.peak, self.live)
            weakref.finalize(st, self._free, key)
        return out

    def _free(self, key: int) -> None:
        self.live -= self._sizes.pop(key, 0)


def _allocator_bytes(fn: Callable[[], Any], device: torch.device) -> tuple[int, int]:
    """(peak, still held) bytes of one call of ``fn`` from the CUDA caching allocator's statistics,
    above the level before the call."""
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    out = fn()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - base
    kept = torch.cuda.memory_allocated(device) - base
    del out
    return int(peak), int(kept)


def _tracked_bytes(fn: Callable[[], Any]) -> tuple[int, int]:
    """(peak, still held) bytes of the storages one call of ``fn`` creates (:class:`LiveTensorBytes`)."""
    tracker = LiveTensorBytes()
    with tracker:
        out = fn()
    kept = tracker.live
    del out
    return int(tracker.peak), int(kept)


def peak_activation_bytes(fn: Callable[[], object], device: str | torch.device = "cpu") -> tuple[int, int]:
    """(peak bytes above the starting allocation, bytes still held by the result) for one call of
    ``fn`` under ``torch.no_grad``: the allocator's statistics on CUDA, :class:`LiveTensorBytes` elsewhere."""
    device = torch.device(device)
    with torch.no_grad():
        if device.type == "cuda":
            return _allocator_bytes(fn, device)
        return _tracked_bytes(fn)


def peak_memory(fn: Callable[[], Any], device: torch.device | str = "cpu") -> dict[str, int]:
    """Run ``fn`` (gradients allowed): ``{"tracked": peak live bytes of tensors it created}`` plus, on
    CUDA, ``"allocator"``: ``max_memory_allocated`` minus the level before the call (a second call)."""
    device = torch.device(device)
    out: dict[str, int] = {}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        out["allocator"] = _allocator_bytes(fn, device)[0]
    out["tracked"] = _tracked_bytes(fn)[0]
    return out


def _leaves(obj: Any, depth: int = 0):
    """The plain tensors behind ``obj``: a tensor subclass's inner tensors (``__tensor_flatten__``), a
    bitsandbytes weight's scales (``SCB``) and quantization state (absmax, code, nested state)."""
    if depth > 4 or obj is None:
        return
    if isinstance(obj, torch.Tensor):
        flatten = getattr(type(obj), "__tensor_flatten__", None)
        if flatten is not None and type(obj) not in (torch.Tensor, torch.nn.Parameter):
            inner, _ = obj.__tensor_flatten__()
            for name in inner:
                yield from _leaves(getattr(obj, name), depth + 1)
            return
        yield obj
        for name in ("SCB", "quant_state"):
            yield from _leaves(getattr(obj, name, None), depth + 1)
    elif hasattr(obj, "absmax"):  # a bitsandbytes QuantState
        for value in vars(obj).values():
            if isinstance(value, torch.Tensor) or hasattr(value, "absmax"):
                yield from _leaves(value, depth + 1)


def storage_bytes(*modules: torch.nn.Module) -> int:
    """Bytes of the storages behind the modules' parameters and buffers, each storage counted once, quantized
    weights by what they really hold (``get_memory_footprint`` misreads tensor subclasses); ``meta`` tensors
    count the bytes they would take."""
    seen: dict[int, int] = {}
    for t in (t for m in modules for t in (*m.parameters(), *m.buffers())):
        for leaf in _leaves(t):
            st = leaf.untyped_storage()
            seen[st._cdata] = int(st.nbytes())
    return sum(seen.values())


__all__ = ["LiveTensorBytes", "peak_activation_bytes", "peak_memory", "storage_bytes"]
