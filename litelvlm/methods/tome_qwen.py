"""ToMe on Qwen2.5-VL (UniPixel): this project's adaptation, not official code.

ToMe's rule (facebookresearch/ToMe @ af95e4b, no Qwen2.5-VL code) applied to the N merged tokens at the LLM
input, with the functions of ``litelvlm.methods.tome`` unchanged.

Details, the official statements with their lines and the deviations: docs/methods/tome_qwen.md
"""

from __future__ import annotations

import torch

from ..errors import LiteLVLMError
from ..llm.context import LLMContext
from ..method import Method
from ..pruning.selection import Selection, check_budget
from . import tome


@torch.no_grad()
def merged_keys(vision, block: int = -1) -> torch.Tensor:
    """(M, d) keys of block ``block`` of Qwen's tower (``QwenVision``), averaged over heads and over each
    merge unit's patches, in the LLM's order."""
    b = block % len(vision.visual.blocks)
    _, k, _ = vision.block_qk(b, vision.block_inputs([b])[b])
    return vision.to_llm_order(k.mean(0).transpose(0, 1)).transpose(0, 1)


def merge_to(x: torch.Tensor, metric: torch.Tensor, budget: int, r: int | None = None
             ) -> tuple[tome.ToMeState, list[int]]:
    """ToMe's matching and size-weighted merging of ``x`` (T, h) by ``metric`` (T, d), rounds of ``r`` merges
    (None: ToMe's cap of half the tokens) until ``budget`` remain; (the state, r of each round)."""
    if not 1 <= budget <= x.shape[0]:
        raise LiteLVLMError(f"budget must be in 1..{x.shape[0]}; got {budget}")
    if r is not None and r < 1:
        raise LiteLVLMError(f"r must be at least 1; got {r}")
    ar = torch.arange(x.shape[0], device=x.device)
    state, metric, rounds = tome.ToMeState(x[None], None, ar, ar.clone()), metric[None], []
    while state.x.shape[1] > budget:
        want = state.x.shape[1] - budget
        m = tome.bipartite_soft_matching(metric, want if r is None else min(r, want), class_token=False)
        size = None if state.size is None else state.size.to(metric.dtype)
        metric, _ = tome.merge_wavg(m, metric, size)
        state.merge(m)
        rounds.append(m.r)
    return state, rounds


def tome_qwen_select(ctx: LLMContext, budget: int, *, r: int | None = None, block: int = -1) -> Selection:
    """ToMe's bipartite soft matching and size-weighted merging of the N merged tokens down to K (module
    docstring)."""
    n = ctx.num_visual
    check_budget(budget, n)
    if budget == n:
        idx = torch.arange(n)
        return Selection(indices=idx, parts={"assignment": idx, "size": torch.ones_like(idx),
                                             "rounds": torch.zeros(0, dtype=torch.long)})
    vision = ctx.pipeline.vision(ctx.prepared)
    metric = merged_keys(vision, block).to(ctx.visual_embeds.device)
    if metric.shape[0] != n:
        raise LiteLVLMError(f"the vision tower gave {metric.shape[0]} merged tokens; the LLM receives {n}")
    state, rounds = merge_to(ctx.visual_embeds, metric, budget, r)
    return Selection(indices=state.rep.cpu(), features=state.x[0],
                     parts={"assignment": state.group.cpu(),
                            "size": torch.bincount(state.group.cpu(), minlength=budget),
                            "rounds": torch.tensor(rounds)})


TOME_QWEN = Method("llm-input", tome_qwen_select, original_positions=False, host_sync=True,
                   reads_vision_blocks=True,
                   name="tome", backbone="qwen2.5-vl",
                   description=("ToMe on Qwen2.5-VL, this project's adaptation (no official Qwen code): "
                                "bipartite soft matching on the last vision block's keys per merged "
                                "token, size-weighted merging of the N merged tokens at the LLM input, "
                                "rounds of up to half until K remain"))
