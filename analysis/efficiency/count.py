"""The FLOPs rows of ``litelvlm efficiency``: every part of the pipeline counted on the ``meta`` device.

The family's cost description counts its parts (:meth:`litelvlm.cost.FamilyCost.count`: FlopCounterMode on a
``meta`` pipeline, the selectors on true shapes, :class:`litelvlm.machine.memory.LiveTensorBytes` for the
activation of every LLM prefill); this module adds the columns every family shares: :func:`llm_columns` (the
paper's quantities, the analytic counts of the row's token plan) before the family's own,
:func:`memory_columns` after them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from analysis.common.measures.flops import llm_flops_exact, llm_macs_fastv_convention, llm_macs_swiglu
from analysis.common.measures.paper_efficiency import paper_row
from analysis.efficiency.arch import cost_of
from litelvlm.cost import CostArch
from litelvlm.cost.meta import MB
from litelvlm.cost.tokens import TokenPlan

__all__ = ["MB", "flops_rows", "llm_columns", "memory_columns"]


def flops_rows(arch: CostArch, rows: list[tuple], attns: list[str], dtype: torch.dtype,
               method_args: Any = None) -> pd.DataFrame:
    """FLOPs (analytic, measured, conventions, end to end) and meta-device LLM activation memory of ``rows``
    (the family's :meth:`~litelvlm.cost.FamilyCost.rows`), per attention implementation; ``method_args``: the
    run's arguments (each method's options; the methods' defaults without them)."""
    cost = cost_of(arch)
    out = [{**llm_columns(arch, r.attn, r.method, r.budget, r.plan, r.flops, dtype), **r.columns,
            **memory_columns(r.peak, r.kept, dtype)}
           for r in cost.count(arch, rows, attns, dtype, method_args)]
    return pd.DataFrame(out)


def llm_columns(arch: CostArch, attn: str, method: str, budget: int, plan: TokenPlan, flops: int,
                dtype: torch.dtype) -> dict:
    """The LLM's columns of one row: the paper's quantities, the row's keys, the token counts, the analytic
    and measured (``flops``) counts and the conventions, for the decoder sizes ``arch.llm``."""
    analytic = llm_flops_exact(arch.llm, plan)
    return {**paper_row(arch.llm, plan, dtype.itemsize),
            "arch": arch.name, "attn": attn, "method": method, "budget": budget,
            "n_tokens": plan.n_tokens, "n_tokens_first_layers": plan.n_before,
            "prune_layer": plan.prune_layer,
            "llm_tflops_analytic": analytic / 1e12, "llm_tflops_measured": flops / 1e12,
            "llm_flops_rel_diff": flops / analytic - 1,
            "llm_tmacs_fastv_convention": llm_macs_fastv_convention(arch.llm, plan) / 1e12,
            "llm_tmacs_paper_convention": llm_macs_swiglu(arch.llm, plan) / 1e12}


def memory_columns(peak: int, kept: int, dtype: torch.dtype) -> dict:
    """The meta-device activation columns of one row (peak bytes of the prefill, bytes its logits keep)."""
    return {"llm_act_mb_meta": peak / MB, "llm_kept_mb_meta": kept / MB, "meta_dtype": str(dtype)[6:]}
