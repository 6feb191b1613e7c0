"""Peak memory of the tensors a computation creates, on any device (CPU, CUDA, and ``meta``).

:class:`LiveTensorBytes` counts the bytes of every storage an aten op creates while it lives.

Details: docs/efficiency.md (``litelvlm.machine.memory``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ..errors import LiteLVLMError
from .optional import optional_import


def tensor_leaves(tree: Any, out: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """The tensors of an aten op's arguments or results, in order: an op's arguments and results nest only
    tuples, lists and dicts (what torch's pytree flattens there, at a fraction of its cost per op)."""
    out = [] if out is None else out
    if isinstance(tree, torch.Tensor):
        out.append(tree)
    elif isinstance(tree, (tuple, list)):
        for item in tree:
            tensor_leaves(item, out)
    elif isinstance(tree, dict):
        for item in tree.values():
            tensor_leaves(item, out)
    return out


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
        inputs = {t.untyped_storage()._cdata for t in tensor_leaves((args, kwargs))}
        out = func(*args, **kwargs)
        for t in tensor_leaves(out):
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


def weight_storages(*modules: torch.nn.Module, buffers: bool = True) -> dict[int, int]:
    """{storage id: bytes} of the storages behind the modules' parameters (and ``buffers``), each once, the
    tensors inside quantized weights included; the id is ``untyped_storage()._cdata``, one for all views."""
    seen: dict[int, int] = {}
    for m in modules:
        for t in (*m.parameters(), *(m.buffers() if buffers else ())):
            for leaf in _leaves(t):
                st = leaf.untyped_storage()
                seen[st._cdata] = int(st.nbytes())
    return seen


def storage_bytes(*modules: torch.nn.Module) -> int:
    """Bytes of the storages behind the modules' parameters and buffers, each storage counted once, quantized
    weights by what they really hold (``get_memory_footprint`` misreads tensor subclasses); ``meta`` tensors
    count the bytes they would take."""
    return sum(weight_storages(*modules).values())


def weight_modules(pipe) -> dict[str, torch.nn.Module]:
    """{attribute name: module} of every module a pipeline holds, in attribute order: each attribute that is a
    ``torch.nn.Module``, or a backend wrapper handing one out through ``modules()`` (GLaMM's CLIP backends); a
    private attribute is named without its underscore (UniPixel's paired CLIP, ``_clip``, loaded on first
    use). The family contract names no such list: this reads what any pipeline exposes."""
    out = {}
    for attr, value in vars(pipe).items():
        name = attr.lstrip("_")
        if isinstance(value, torch.nn.Module):
            out[name] = value
        elif not isinstance(value, type) and callable(getattr(value, "modules", None)):
            module = value.modules()
            if isinstance(module, torch.nn.Module):
                out[name] = module
    return out


def eager_attention_bytes(batch: int, heads: int, queries: int, keys: int, dtype: torch.dtype,
                          saved_layers: int = 0) -> int:
    """Peak bytes of one eager attention (transformers' ``eager_attention_forward``): the (B, H, Q, K) logits
    in ``dtype`` while ``softmax(..., dtype=float32)`` holds its float32 copy of them and its float32 result,
    then the cast back, plus the (B, 1, Q, K) additive mask every layer shares, plus what a backward keeps of
    ``saved_layers`` layers (the float32 softmax and the cast probabilities each)."""
    size = torch.empty(0, dtype=dtype).element_size()
    elements = int(batch) * int(heads) * int(queries) * int(keys)
    converted = 0 if size == 4 else 4  # softmax's float32 copy of logits in another dtype
    peak = elements * max(size + converted + 4, size + 4 + (0 if size == 4 else size))
    mask = int(batch) * int(queries) * int(keys) * size
    return peak + mask + int(saved_layers) * elements * (4 + size)


def attention_rows_bytes(batch: int, heads: int, queries: int, keys: int, head_dim: int) -> int:
    """Peak bytes of Q explicit attention rows over K keys in at least float32 (``rows_from_hidden``): the
    logits, their masked copy and the softmax (B, H, Q, K), the keys in float32 repeated to every head (B, H,
    K, d), the mask."""
    elements = int(batch) * int(heads) * int(queries) * int(keys)
    return elements * 12 + int(batch) * int(heads) * int(keys) * int(head_dim) * 8 + int(queries) * int(keys)


def _cgroup_room() -> int | None:
    """Bytes the process's memory cgroup (v2, else v1) still allows: its limit less the anonymous memory in
    use (page cache can be reclaimed); None without a limit."""
    for limit, stat, used_key in (
        (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory.stat"), "anon"),
                                  (Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),
                                   Path("/sys/fs/cgroup/memory/memory.stat"), "total_rss")):
        try:
            cap = limit.read_text().strip()
            if not cap.isdigit() or int(cap) >= 1 << 60:
                continue
            used = {k: int(v) for k,
                    v in (line.split() for line in stat.read_text().splitlines())}.get(used_key, 0)
        except (OSError, ValueError):
            continue
        return max(0, int(cap) - used)
    return None


def available_bytes(device: str | torch.device = "cpu") -> int | None:
    """Bytes a new allocation on ``device`` can take now: on CUDA, ``torch.cuda.mem_get_info``'s free memory
    plus what the caching allocator holds unused; elsewhere ``MemAvailable`` of ``/proc/meminfo`` (psutil's
    figure where that file is missing), within the memory cgroup's limit; None where unknown (``meta``)."""
    device = torch.device(device)
    if device.type == "meta":
        return None
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    room = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                room = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        room = None
    if room is None:
        try:
            psutil = optional_import("psutil")
        except ImportError:
            return _cgroup_room()
        room = int(psutil.virtual_memory().available)
    cgroup = _cgroup_room()
    return room if cgroup is None else min(room, cgroup)


def gib(nbytes: int) -> str:
    """``nbytes`` in GiB, as the refusals print it (two decimals; two significant digits below 0.01 GiB)."""
    value = nbytes / 2 ** 30
    return f"{value:.2f} GiB" if value >= 0.01 or value == 0 else f"{value:.2g} GiB"


def check_fits(needed: int, what: str, fix: str, device: str | torch.device = "cpu",
               available: int | None = None) -> None:
    """Refuse (:class:`~litelvlm.errors.LiteLVLMError`) ``what`` when it needs more than ``available`` bytes
    (None:
    :func:`available_bytes` of ``device`` now; unknown: allowed), naming both figures and ``fix``."""
    room = available_bytes(device) if available is None else int(available)
    if room is None or needed <= room:
        return
    raise LiteLVLMError(f"{what} needs {gib(needed)} at once; {torch.device(device)} has {gib(room)} "
                        f"available. Refused before allocating: {fix}")


__all__ = ["LiveTensorBytes", "tensor_leaves", "attention_rows_bytes", "available_bytes", "check_fits",
           "eager_attention_bytes", "gib", "peak_activation_bytes", "peak_memory", "storage_bytes",
           "weight_modules", "weight_storages"]
