"""litelvlm.cost.meta_memo: a repeated ``meta`` op answered with its first call's output metadata, never
where a fresh allocation differs from what the kernel returns (in place, views, aliasing outputs), and a count
(FLOPs, tracked bytes) the same with it as without."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from litelvlm.cost.meta import MetaScalars
from litelvlm.cost.meta_memo import MetaKernelMemo
from litelvlm.machine.memory import LiveTensorBytes


def _meta(*shape, dtype=torch.float32):
    return torch.empty(*shape, dtype=dtype, device="meta")


#: name -> a function of fresh meta inputs (each call builds its own)
OPS = {
    "add": lambda: _meta(3, 5) + _meta(3, 5),
    "broadcast": lambda: _meta(3, 1, 5) * _meta(4, 1),
    "int plus int": lambda: _meta(3, dtype=torch.int64) + 1,
    "int plus float": lambda: _meta(3, dtype=torch.int64) + 1.0,
    "int true divide": lambda: _meta(3, dtype=torch.int64) / 2,
    "half plus float tensor": lambda: _meta(3, dtype=torch.float16) + _meta(3),
    "transposed input": lambda: torch.nn.functional.silu(_meta(4, 6).t()),
    "matmul": lambda: _meta(2, 3, 4) @ _meta(4, 5),
    "softmax": lambda: torch.softmax(_meta(2, 7), -1),
    "max over a dim": lambda: _meta(4, 6).max(dim=1),
    "layer norm": lambda: torch.nn.functional.layer_norm(_meta(2, 8), (8,)),
    "cat": lambda: torch.cat([_meta(2, 3), _meta(4, 3)]),
    "to bfloat16": lambda: _meta(3, 4).to(torch.bfloat16),
    "contiguous": lambda: _meta(3, 4).t().contiguous(),
    "comparison": lambda: _meta(3) > 0,
    "sdpa": lambda: torch.nn.functional.scaled_dot_product_attention(_meta(1, 2, 5, 8), _meta(1, 2, 5, 8),
                                                                     _meta(1, 2, 5, 8), is_causal=True),
}


def _metadata(out) -> list:
    flat = out if isinstance(out, tuple) else (out,)
    return [(tuple(t.shape), t.stride(), t.dtype, t.storage_offset(), t.untyped_storage().nbytes())
            for t in flat]


@pytest.mark.parametrize("name", list(OPS))
def test_a_repeat_is_answered_with_the_first_calls_metadata(name):
    expect = _metadata(OPS[name]())
    with MetaKernelMemo() as memo:
        first = _metadata(OPS[name]())
        hits = memo.hits
        again = _metadata(OPS[name]())
    assert first == again == expect
    assert memo.hits > hits, "the repeat ran its kernel again"


def test_keys_tell_the_arguments_types_apart():
    with MetaKernelMemo():
        ints = _meta(3, dtype=torch.int64) + 1
        floats = _meta(3, dtype=torch.int64) + 1.0
    assert (ints.dtype, floats.dtype) == (torch.int64, torch.float32)


def test_a_factory_follows_the_default_dtype_of_each_call():
    """A model built under a dtype sets torch's default dtype for its parameters: the same factory call then
    makes another dtype, so the default dtype is part of the key."""
    with MetaKernelMemo():
        before = torch.empty(3, device="meta").dtype
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            during = torch.empty(3, device="meta").dtype
        finally:
            torch.set_default_dtype(previous)
    assert (before, during) == (torch.float32, torch.float64)


def test_what_a_fresh_allocation_does_not_reproduce_runs_its_kernel():
    x = _meta(4, 6)
    with MetaKernelMemo() as memo:
        for _ in range(2):
            assert x.add_(1) is x  # in place: the input itself
            for view in (x.view(24), x.t(), x[1], x.expand(2, 4, 6)):
                assert view.untyped_storage()._cdata == x.untyped_storage()._cdata
            a, b = x.chunk(2)
            assert a.untyped_storage()._cdata == b.untyped_storage()._cdata
    assert memo.hits == 0


def test_inputs_off_meta_run_their_kernel():
    with MetaKernelMemo() as memo:
        for _ in range(2):
            assert torch.equal(torch.ones(3) + 1, torch.full((3,), 2.0))
    assert memo.hits == 0


class _PassThrough(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


def test_a_count_is_the_same_with_the_memo():
    """FLOPs and tracked bytes of a stack of identical layers on ``meta``, under ``MetaScalars`` (which
    answers repeats) and under a mode that does nothing."""
    with torch.device("meta"):
        layers = torch.nn.Sequential(*[torch.nn.Sequential(torch.nn.LayerNorm(64), torch.nn.Linear(64, 256),
                                                           torch.nn.GELU(), torch.nn.Linear(256, 64))
                                       for _ in range(4)])
    counts = []
    for outer in (_PassThrough, MetaScalars):
        fc, mem = FlopCounterMode(display=False), LiveTensorBytes()
        with torch.no_grad(), outer() as mode, fc, mem:
            out = layers(_meta(2, 9, 64))
        counts.append((fc.get_total_flops(), mem.peak, mem.live, _metadata(out)))
        del out
    assert counts[0] == counts[1]
    assert mode.hits > 0
