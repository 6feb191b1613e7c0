"""The Qwen2.5-VL + SAM 2 pipeline's ``layout`` of the unpruned prompt as the meta-device activation count
sees it: the prompt's token ids are an input of the prefill (they exist before it, as the weights), so the
layout reads them and makes no copy of them, and ``llm_act_mb_meta`` counts no such copy (a host tensor a CUDA
run's ``llm_act_mb``, the allocator's statistics, could not count either)."""

from __future__ import annotations

import functools

import pytest
import torch

from litelvlm.machine.memory import LiveTensorBytes


class CountedTensors(LiveTensorBytes):
    """:class:`LiveTensorBytes` that also keeps the tensors whose storages it counted (``counted``)."""

    def __init__(self) -> None:
        super().__init__()
        self.counted: list[torch.Tensor] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        before = set(self._sizes)
        out = super().__torch_dispatch__(func, types, args, kwargs)
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor) and t.untyped_storage()._cdata in set(self._sizes) - before:
                self.counted.append(t)
        return out

    def copies_of(self, ids: torch.Tensor) -> list[torch.Tensor]:
        """The counted host tensors holding exactly the values of ``ids``."""
        return [t for t in self.counted if t.device.type == "cpu" and t.dtype == ids.dtype
                and t.shape == ids.shape and torch.equal(t, ids)]


@functools.cache
def _meta_parts():
    """The efficiency study's parts of ``unipixel-tiny`` on ``meta`` in bfloat16 (eager), as ``count_rows``
    builds them, and its arch."""
    from litelvlm.cost.meta import MetaScalars
    from litelvlm.unipixel.cost import UniPixelCost

    cost = UniPixelCost()
    arch = cost.arch("unipixel-tiny")
    with MetaScalars():
        pipe = cost.build(arch, "meta", torch.bfloat16, "eager")
        return cost, arch, cost.parts(pipe, arch, None)


def test_the_unpruned_layout_reads_the_prompt_ids_without_copying_them():
    _, _, parts = _meta_parts()
    pipe, prepared = parts.pipe, parts.prepared
    n, ids = pipe.num_visual(prepared), prepared.input_ids
    mem = CountedTensors()
    with torch.no_grad(), mem:
        layout = pipe.layout(prepared, n)
        rows = layout.seg_predictors
    assert layout.seq_len == ids.numel() == 472
    assert torch.equal(rows.cpu(), pipe.seg_rows(ids).cpu())
    assert mem.counted  # the probe sees what the layout makes (its M-RoPE ids)
    assert mem.copies_of(ids) == []
    probe = CountedTensors()  # and it would see a copy: the pruned-ids construction applied to all N tokens
    with probe:
        pipe._pruned_ids(prepared, n)
    assert len(probe.copies_of(ids)) == 1


@pytest.mark.parametrize("method", ["none", "fastv"])
def test_the_meta_prefill_counts_no_copy_of_the_prompt_ids(method):
    """``llm_act_mb_meta`` of ``unipixel-tiny`` (``none``, FastV 64: both build the unpruned layout) counts no
    host copy of the 472 prompt ids (3,776 bytes: what the row counted before the shared Qwen2.5-VL + SAM 2
    pipeline)."""
    from litelvlm.cost.meta import MetaScalars

    cost, arch, parts = _meta_parts()
    budget = arch.num_patches if method == "none" else 64
    plan = cost.plan(arch, (method, budget), None)
    mem = CountedTensors()
    with torch.no_grad(), MetaScalars(), mem:
        out = parts.run_prefill(plan)
    assert out.device.type == "meta" and mem.peak > 0
    assert mem.copies_of(parts.prepared.input_ids) == []
