"""The FLOPs rows of ``litelvlm efficiency``: every part of the pipeline counted on the ``meta`` device.

FlopCounterMode counts the parts of :class:`~analysis.efficiency.parts.PipelineParts` on a ``meta``
pipeline (no memory: the full 7B model anywhere), the selectors on true shapes
(:class:`~analysis.efficiency.meta.SelectorBench`); the analytic counts come from each method's token
schedule (:func:`~analysis.efficiency.flops.token_plan`), and :class:`litelvlm.memory.LiveTensorBytes` gives
the activation memory of every LLM prefill on ``meta``. The columns every family shares are
:func:`llm_columns` and :func:`memory_columns`; a family adds its own parts between them (GLaMM's here, the
unipixel family's in :func:`analysis.efficiency.unipixel_parts.flops_rows`).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import torch

from analysis.common.flops import TokenPlan
from analysis.efficiency.arch import EffArch
from analysis.efficiency.parts import PipelineParts, PrefillParts

#: Bytes in a MiB (the tables' memory unit).
MB = 2 ** 20


def flops_rows(arch: EffArch, pairs: list[tuple[str, int]], attns: list[str], dtype: torch.dtype,
               fastv_layer: int) -> pd.DataFrame:
    """FLOPs (analytic, measured, conventions, end to end) and meta-device LLM activation memory."""
    if arch.family == "unipixel":
        from analysis.efficiency.unipixel_parts import flops_rows as unipixel_rows

        return unipixel_rows(arch, pairs, attns, dtype, fastv_layer)
    from tqdm.auto import tqdm

    from analysis.common.flops import count_flops
    from analysis.efficiency.build import build_pipeline, set_attention
    from analysis.efficiency.flops import token_plan
    from analysis.efficiency.meta import MetaScalars, SelectorBench
    from analysis.efficiency.parts import needs_text

    with MetaScalars():
        pipe = build_pipeline(arch, "meta", dtype, attns[0])
        parts = PipelineParts(pipe, arch, fastv_layer)
        const = {name: count_flops(fn)[0] for name, fn in
                 (("clip", parts.run_clip), ("text", parts.run_text), ("sam", parts.run_sam))}
    bench = SelectorBench(arch)
    plans = {p: token_plan(arch, p[0], p[1], fastv_layer) for p in pairs}
    llm = llm_prefills(parts, plans, attns, lambda attn: set_attention(pipe, attn))
    selections = {p: bench.run(*p) for p in tqdm(pairs, desc="selector FLOPs", leave=False)}
    proj_flops: dict[int, int] = {}
    rows = []
    for attn in attns:
        for (method, budget), plan in plans.items():
            flops, peak, kept = llm[attn, plan]
            sel, selection = selections[method, budget]
            vis_in = parts.projector_rows(selection)
            text = const["text"] if needs_text(method) else 0
            if vis_in not in proj_flops:
                with MetaScalars():
                    proj_flops[vis_in] = count_flops(lambda n=vis_in: parts.run_projector(n))[0]
            proj = proj_flops[vis_in]
            rows.append({**llm_columns(arch, attn, method, budget, plan, flops, dtype),
                "clip_tflops": const["clip"] / 1e12, "text_tflops": text / 1e12, "selector_tflops": sel / 1e12,
                "projector_tflops": proj / 1e12, "sam_tflops": const["sam"] / 1e12,
                "e2e_tflops": (const["clip"] + text + sel + proj + flops + const["sam"]) / 1e12,
                **memory_columns(peak, kept, dtype)})
    return pd.DataFrame(rows)


def llm_columns(arch: EffArch, attn: str, method: str, budget: int, plan: TokenPlan, flops: int,
                dtype: torch.dtype) -> dict:
    """The LLM's columns of one row: the paper's quantities, the row's keys, the token counts, the analytic and
    measured (``flops``) counts and the conventions, for the decoder sizes ``arch.llm``."""
    from analysis.common.flops import llm_flops_exact, llm_macs_fastv_convention, llm_macs_swiglu
    from analysis.common.paper_efficiency import paper_row

    analytic = llm_flops_exact(arch.llm, plan)
    return {**paper_row(arch.llm, plan, dtype.itemsize),
            "arch": arch.name, "attn": attn, "method": method, "budget": budget,
            "n_tokens": plan.n_tokens, "n_tokens_first_layers": plan.n_before, "prune_layer": plan.prune_layer,
            "llm_tflops_analytic": analytic / 1e12, "llm_tflops_measured": flops / 1e12,
            "llm_flops_rel_diff": flops / analytic - 1,
            "llm_tmacs_fastv_convention": llm_macs_fastv_convention(arch.llm, plan) / 1e12,
            "llm_tmacs_paper_convention": llm_macs_swiglu(arch.llm, plan) / 1e12}


def memory_columns(peak: int, kept: int, dtype: torch.dtype) -> dict:
    """The meta-device activation columns of one row (peak bytes of the prefill, bytes its logits keep)."""
    return {"llm_act_mb_meta": peak / MB, "llm_kept_mb_meta": kept / MB, "meta_dtype": str(dtype)[6:]}


def llm_prefills(parts: PrefillParts, plans: dict, attns: list[str],
                 set_attention: Callable[[str], None]) -> dict:
    """{(attention, plan): (FLOPs, peak bytes, kept bytes)} of every distinct token plan's prefill on ``meta``,
    per attention implementation (``set_attention(attn)`` switches the pipeline's)."""
    from tqdm.auto import tqdm

    llm: dict = {}
    for attn in attns:
        set_attention(attn)  # same weights (none: meta), other attention kernel
        for plan in tqdm(list(dict.fromkeys(plans.values())), desc=f"LLM on meta ({attn})", leave=False):
            llm[attn, plan] = _meta_prefill(parts, plan)
    return llm


def _meta_prefill(parts: PrefillParts, plan: TokenPlan) -> tuple[int, int, int]:
    """(FLOPs, peak bytes, bytes the logits keep) of one prefill of the pipeline on ``meta``."""
    from torch.utils.flop_counter import FlopCounterMode

    from analysis.efficiency.meta import MetaScalars
    from litelvlm.memory import LiveTensorBytes

    fc, mem = FlopCounterMode(display=False), LiveTensorBytes()
    with torch.no_grad(), MetaScalars(), fc, mem:
        out = parts.run_prefill(plan)
    kept = mem.live
    del out
    return int(fc.get_total_flops()), mem.peak, kept
