"""A ``meta`` kernel's output answered from an earlier call on inputs of the same metadata (this project's own
speed-up of the FLOPs counts; it changes no number they give).

torch registers Python reference kernels for ``meta`` (``torch._refs``): an elementwise op there costs
hundreds of microseconds of Python, most of a count's time, and an LLM's layers repeat the same ops on the
same shapes. On ``meta`` an op's outputs are a function of its inputs' shapes, strides, offsets and dtypes and
of its other arguments, so :class:`MetaKernelMemo` keeps each op's output metadata and answers a repeat with
fresh tensors of that metadata. It answers only what a fresh allocation reproduces: ops that neither mutate
nor alias an input (by their schema and by what the first call returned), whose arguments it can key (tensors
on ``meta``; numbers, strings, dtypes and the like keyed with their type, so ``x + 1`` and ``x + 1.0`` differ;
with torch's default dtype, which a factory without one makes), and whose outputs are ``meta`` tensors of
their own storage; anything else runs its kernel every time.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_unflatten

#: argument types keyed by (type, value)
_PLAIN = (type(None), bool, int, float, str, torch.dtype, torch.device, torch.layout, torch.memory_format)
#: an op and arguments whose outputs a fresh allocation does not reproduce
_RUN = object()


class _Unkeyable(Exception):
    pass


def _key(x):
    if isinstance(x, torch.Tensor):
        if x.device.type != "meta":
            raise _Unkeyable
        return (tuple(x.shape), x.stride(), x.storage_offset(), x.dtype)
    if isinstance(x, (list, tuple)):
        return (type(x), *(_key(v) for v in x))
    if isinstance(x, dict):
        return (dict, *((k, _key(v)) for k, v in sorted(x.items())))
    if isinstance(x, _PLAIN):
        return (type(x), x)
    raise _Unkeyable


def _fresh(t: torch.Tensor) -> bool:
    """Whether ``t`` is what a fresh ``empty_strided`` of its metadata on ``meta`` is."""
    fresh = torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta")
    return t.storage_offset() == 0 and t.untyped_storage().nbytes() == fresh.untyped_storage().nbytes()


class MetaKernelMemo(TorchDispatchMode):
    """Within the block, a ``meta`` op repeated on inputs of the same metadata returns fresh outputs of the
    metadata its first call returned, without running its kernel again; ``hits`` counts those answers.
    Enter it before (outside) the modes that must see every op (``FlopCounterMode``, a byte tracker)."""

    def __init__(self) -> None:
        super().__init__()
        self.hits = 0
        self._seen: dict = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        schema = func._schema
        if schema.is_mutable or any(r.alias_info is not None for r in schema.returns):
            return func(*args, **kwargs)
        try:
            # a factory without a dtype makes the default one (a model build under a dtype changes it)
            key = (func, torch.get_default_dtype(), _key(args), _key(kwargs))
        except _Unkeyable:
            return func(*args, **kwargs)
        seen = self._seen.get(key)
        if seen is _RUN:
            return func(*args, **kwargs)
        if seen is not None:
            metas, spec = seen
            self.hits += 1
            return tree_unflatten([torch.empty_strided(shape, stride, dtype=dtype, device="meta")
                                   for shape, stride, dtype in metas], spec)
        out = func(*args, **kwargs)
        inputs = {t.untyped_storage()._cdata for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor)}
        flat, spec = tree_flatten(out)
        ok = bool(flat) and all(isinstance(t, torch.Tensor) and t.device.type == "meta"
                                and t.untyped_storage()._cdata not in inputs and _fresh(t) for t in flat)
        ok = ok and len({t.untyped_storage()._cdata for t in flat}) == len(flat)  # no two outputs share one
        self._seen[key] = ([(tuple(t.shape), t.stride(), t.dtype) for t in flat], spec) if ok else _RUN
        return out
